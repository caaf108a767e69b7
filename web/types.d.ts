// Globals the phone app adds to the page (read by tests and for debugging).
interface Window {
  doorbell: Readonly<{
    state: string;
    pc: RTCPeerConnection | null;
    metrics: object;
    callId: string | null;
    hubConnected: boolean;
    doors: { door_id: string; name: string; online: boolean; access?: object }[];
    missedRings: { door_id: string; door_name: string; at_ms: number }[];
  }>;
}

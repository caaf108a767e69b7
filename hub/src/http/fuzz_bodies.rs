//! The pairing body for the fuzz targets (`crate::fuzzing`): decoded as `POST /api/pair` does.

/// Decodes a `POST /api/pair` body; whether it is a door-made code.
pub(crate) fn fuzz_pair_body(data: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<super::PairRequest>(data) {
        let _ = req.door_made.is_present();
    }
}

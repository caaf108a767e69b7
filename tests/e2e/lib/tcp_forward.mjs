// A TCP forwarder as its own process, so it can run inside a network namespace:
//   node tcp_forward.mjs LISTEN_HOST TARGET_HOST TARGET_PORT
// listens on LISTEN_HOST:0, prints the port on one line, and carries every connection to
// TARGET_HOST:TARGET_PORT until it is killed. Used to give the door in a namespace a hub on its
// own loopback (the door speaks plain ws:// only to loopback).

import net from 'node:net';

const [listenHost, targetHost, targetPort] = process.argv.slice(2);
const server = net.createServer((client) => {
  const upstream = net.connect(Number(targetPort), targetHost);
  for (const s of [client, upstream]) s.on('error', () => {});
  client.pipe(upstream);
  upstream.pipe(client);
  const endBoth = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('close', endBoth);
  upstream.on('close', endBoth);
});
server.listen(0, listenHost, () => {
  process.stdout.write(`${server.address().port}\n`);
});

/**
 * A probed site whose health a test switches: a TCP listener Boston's probe connects to (open:
 * up; closed: connection refused, down), and a zone with Boston (probed) and Geneva (unprobed)
 * in one group, under a Pool Name. Used by the tests that check state reaching every answerer
 * (UDP threads).
 */
import net from 'node:net';
import { tempZonesDir } from './dns.js';

export interface ProbeTarget {
  /** Opens the listener (again on `port` when given); resolves with its port. */
  open(port?: number): Promise<number>;
  close(): Promise<void>;
}

export function probeTarget(): ProbeTarget {
  let target: net.Server | null = null;
  return {
    open: (port = 0) =>
      new Promise<number>((resolve, reject) => {
        const server = net.createServer((socket) => socket.destroy());
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
        target = server;
      }),
    close: () => new Promise<void>((resolve) => (target ? target.close(() => resolve()) : resolve())),
  };
}

/** A zones directory with boston (probed at 127.0.0.1:`port`, 200 ms) and geneva. */
export function probedZonesDir(port: number): string {
  return tempZonesDir({
    'app.yaml': `zone: app.example.com
soa: { mname: ns1.app.example.com, rname: hostmaster.example.com }
nameservers: { ns1.app.example.com: [192.0.2.53] }
sites:
  boston: { addresses: [203.0.113.10], probe: { tcp: "127.0.0.1:${port}", interval: 200ms, timeout: 500ms, rise: 1, fall: 1 } }
  geneva: { addresses: [198.51.100.30] }
groups: { all: [boston, geneva] }
pool: { name: "@" }
`,
  });
}

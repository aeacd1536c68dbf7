/**
 * docs/delegation.md's way to port 53 without root, with real processes: `serve` run as `nobody`
 * on a privileged port is refused without CAP_NET_BIND_SERVICE and serves with it as an ambient
 * capability (what deploy/sitedns.service's AmbientCapabilities= does), and the shipped unit
 * passes `systemd-analyze verify`.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { query, tempZonesDir } from '../helpers/dns.js';
import { CLI, udpQuery } from '../helpers/net.js';

const UNIT = fileURLToPath(new URL('../../deploy/sitedns.service', import.meta.url));
const ZONE = `zone: p.test
soa: { mname: ns1.p.test, rname: h.p.test }
nameservers: { ns1.p.test: [192.0.2.1] }
records:
  www: { A: [192.0.2.80] }
`;
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];
const privilegedStart = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
const canTry = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).error === undefined && privilegedStart > 600;

t.test('the unit file passes systemd-analyze verify', { skip: spawnSync('systemd-analyze', ['--version']).error ? 'no systemd-analyze' : false }, async (t) => {
  const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const unit = readFileSync(UNIT, 'utf8');
  t.match(unit, /^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m);
  t.match(unit, /^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m);
  t.match(unit, /^User=sitedns$/m);
});

/** A UDP and TCP port below the privileged limit that is free on 127.0.0.1 now. */
async function freePrivilegedPort(): Promise<number> {
  for (let port = 600 + Math.floor(Math.random() * 300); port < privilegedStart; port++) {
    const socket = dgram.createSocket('udp4');
    const free = await new Promise<boolean>((resolve) => {
      socket.once('error', () => resolve(false));
      socket.bind(port, '127.0.0.1', () => resolve(true));
    });
    socket.close();
    if (free) return port;
  }
  throw new Error('no free port below the privileged limit');
}

function serveAs(setprivArgs: string[], port: number, zones: string) {
  const proc = spawn('setpriv', [...setprivArgs, process.execPath, CLI, 'serve', '--zones', zones, '--listen', `127.0.0.1:${port}`, '--http', 'off', '--udp-threads', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout!.on('data', (d) => (output += d));
  proc.stderr!.on('data', (d) => (output += d));
  return { proc, output: () => output };
}

t.test('port below 1024 as nobody: refused without the capability, served with it', { skip: canTry ? false : 'needs root, setpriv, and privileged ports' }, async (t) => {
  const zones = tempZonesDir({ 'p.test.yaml': ZONE });
  spawnSync('chmod', ['-R', 'a+rX', zones]);
  const port = await freePrivilegedPort();

  const without = serveAs(NOBODY, port, zones);
  const [code] = await once(without.proc, 'exit');
  t.not(code, 0, 'serve fails to start');
  t.match(without.output(), /EACCES|permission denied/i, 'and says the bind was not permitted');

  const withCap = serveAs([...NOBODY, '--inh-caps=+net_bind_service', '--ambient-caps=+net_bind_service'], port, zones);
  t.teardown(() => void withCap.proc.kill('SIGTERM'));
  let reply: Buffer | null = null;
  for (let i = 0; i < 100 && reply === null && withCap.proc.exitCode === null; i++) {
    reply = await udpQuery(port, query('www.p.test'), '127.0.0.1', 200);
  }
  t.ok(reply, `answers on 127.0.0.1:${port} as nobody${reply ? '' : `: ${withCap.output()}`}`);
  withCap.proc.kill('SIGTERM');
  const [stopped] = await once(withCap.proc, 'exit');
  t.equal(stopped, 0, 'and stops cleanly');
});

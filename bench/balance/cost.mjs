/**
 * Cost of one policy call (selectAnswer) per policy, 3 sites: `node bench/balance/cost.mjs` after
 * `npm run build`. A micro-benchmark: run it on an idle machine and record `uptime` with it.
 */
import { compileZoneFiles } from '../../dist/config/compile.js';
import { parseZoneText } from '../../dist/config/load.js';
import { PolicyMemory } from '../../dist/policy/memory.js';
import { selectAnswer } from '../../dist/policy/select.js';
import { makeSnapshot } from '../../dist/state/snapshot.js';
function pool(settings){
const text=`zone: sim.test
soa: { mname: ns1.sim.test, rname: h.sim.test }
nameservers: { ns1.sim.test: [192.0.2.53] }
sites:
  a: { addresses: [192.0.2.10], capacity: 1000 }
  b: { addresses: [192.0.2.11], capacity: 1000 }
  c: { addresses: [192.0.2.12], capacity: 500 }
groups:
  eu: [a, c]
pool: { name: "@", ${settings} }
`; const l=parseZoneText(text,'x.yaml'); return compileZoneFiles([l]).zones[0].dynamicNames.find(d=>d.kind==='pool');}
const now=Date.now();
const snap=makeSnapshot(new Map([['sim.test/a',{up:true,utilization:0.7,loadAt:now}],['sim.test/b',{up:true,utilization:0.65,loadAt:now}],['sim.test/c',{up:true,utilization:0.72,loadAt:now}]]),true,now);
const env={now:()=>now+1000,random:Math.random,memory:new PolicyMemory()};
const client={address:'198.51.100.7',ecs:null};
for (const [label,s] of [['first','policy: first'],['round-robin','policy: round-robin'],['least-busy','policy: least-busy'],['least-busy+count','policy: least-busy, load_per_answer: 1'],['least-busy+topology','policy: least-busy, topology: { eu: [198.51.100.0/24] }'],['offload','policy: offload, primary: a, offload: [b, c], sorry: 192.0.2.250']]){
  const p=pool(s); for(let i=0;i<200000;i++) selectAnswer(p,4,snap,client,env);
  const N=2_000_000; const t0=process.hrtime.bigint(); for(let i=0;i<N;i++) selectAnswer(p,4,snap,client,env); const dt=Number(process.hrtime.bigint()-t0)/N;
  console.log(label.padEnd(22), dt.toFixed(0),'ns/call');
}

// A home NAT made of Linux network namespaces, for the NAT test and bench/nat.mjs.
//
//   pub  (10.231.0.2)  relay/bootstrap node, clients          "the internet"
//    |  veth
//   rtr  (10.231.0.1 | 10.231.1.1)  MASQUERADE out, drops new connections in
//    |  veth
//   home (10.231.1.2)  the miner: can dial out, cannot be dialled
//
// Only addresses inside namespaces made here are used; no namespace has a route to the
// host's network. `pub` has no route to 10.231.1.0/24 at all, like the internet has none to a
// home LAN. Needs root (CAP_NET_ADMIN), `ip` and `iptables`.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'

export const IPS = { pub: '10.231.0.2', rtrPub: '10.231.0.1', rtrHome: '10.231.1.1', home: '10.231.1.2' }

function run (cmd, args) {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 }).toString()
}

/** Why namespaces cannot be made here, or null when they can. */
export function netnsUnavailable () {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'network namespaces need root (CAP_NET_ADMIN); run as root or set HEURIST_SKIP_NETNS=1 to skip on purpose'
  for (const tool of ['ip', 'iptables']) {
    try { run('sh', ['-c', `command -v ${tool}`]) } catch { return `\`${tool}\` is not installed (Debian: apt-get install -y iproute2 iptables)` }
  }
  return null
}

/** Makes the three namespaces; returns their names, an exec prefix and an idempotent teardown. */
export function makeNat () {
  // unique per run: namespaces and interface names (<= 15 chars) never collide with a parallel run
  const p = 'hn' + randomBytes(3).toString('hex')
  const ns = { pub: `${p}pub`, rtr: `${p}rtr`, home: `${p}home` }
  const made = []
  const teardown = () => {
    for (const n of made.reverse()) { try { run('ip', ['netns', 'del', n]) } catch { /* already gone */ } }
    made.length = 0
  }
  try {
    for (const n of Object.values(ns)) { run('ip', ['netns', 'add', n]); made.push(n) }
    const ipn = (n, ...args) => run('ip', ['-n', n, ...args])
    run('ip', ['link', 'add', `${p}a`, 'type', 'veth', 'peer', 'name', `${p}b`])
    run('ip', ['link', 'set', `${p}a`, 'netns', ns.pub])
    run('ip', ['link', 'set', `${p}b`, 'netns', ns.rtr])
    run('ip', ['link', 'add', `${p}c`, 'type', 'veth', 'peer', 'name', `${p}d`])
    run('ip', ['link', 'set', `${p}c`, 'netns', ns.rtr])
    run('ip', ['link', 'set', `${p}d`, 'netns', ns.home])
    ipn(ns.pub, 'addr', 'add', `${IPS.pub}/24`, 'dev', `${p}a`)
    ipn(ns.rtr, 'addr', 'add', `${IPS.rtrPub}/24`, 'dev', `${p}b`)
    ipn(ns.rtr, 'addr', 'add', `${IPS.rtrHome}/24`, 'dev', `${p}c`)
    ipn(ns.home, 'addr', 'add', `${IPS.home}/24`, 'dev', `${p}d`)
    for (const [n, dev] of [[ns.pub, `${p}a`], [ns.rtr, `${p}b`], [ns.rtr, `${p}c`], [ns.home, `${p}d`]]) ipn(n, 'link', 'set', dev, 'up')
    for (const n of Object.values(ns)) ipn(n, 'link', 'set', 'lo', 'up')
    ipn(ns.home, 'route', 'add', 'default', 'via', IPS.rtrHome)
    const inRtr = (...args) => run('ip', ['netns', 'exec', ns.rtr, ...args])
    inRtr('sysctl', '-qw', 'net.ipv4.ip_forward=1')
    // the home router: everything from home leaves as 10.231.0.1; only replies come back in
    inRtr('iptables', '-t', 'nat', '-A', 'POSTROUTING', '-s', '10.231.1.0/24', '-o', `${p}b`, '-j', 'MASQUERADE')
    inRtr('iptables', '-A', 'FORWARD', '-i', `${p}b`, '-o', `${p}c`, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT')
    inRtr('iptables', '-A', 'FORWARD', '-i', `${p}b`, '-o', `${p}c`, '-j', 'DROP')
  } catch (e) {
    teardown()
    throw e
  }
  return {
    ns,
    prefix: p,
    /** argv that runs `cmd` inside namespace `n` */
    exec: (n, cmd, args) => ['ip', ['netns', 'exec', n, cmd, ...args]],
    teardown,
    /** namespaces of this run still present (for the teardown check) */
    remaining: () => run('ip', ['netns', 'list']).split('\n').map(l => l.split(' ')[0]).filter(n => n !== undefined && n.startsWith(p))
  }
}

export const LAN = { subnet: '10.232.0.0/24', ip: i => `10.232.0.${i}` }

/**
 * A flat private LAN: `names.length` hosts (one namespace each) on one bridge, which lives in
 * its own switch namespace; host i (from 1) is 10.232.0.i/24. No NAT and no route anywhere
 * else: every host dials every other directly, as on an office network or a cloud VPC.
 */
export function makeLan (names) {
  const p = 'hl' + randomBytes(3).toString('hex')
  const sw = `${p}sw`
  const ns = Object.fromEntries(names.map(n => [n, `${p}${n}`.slice(0, 30)]))
  const ips = Object.fromEntries(names.map((n, i) => [n, LAN.ip(i + 1)]))
  const made = []
  const teardown = () => {
    for (const n of made.reverse()) { try { run('ip', ['netns', 'del', n]) } catch { /* already gone */ } }
    made.length = 0
  }
  try {
    run('ip', ['netns', 'add', sw]); made.push(sw)
    run('ip', ['-n', sw, 'link', 'add', `${p}br`, 'type', 'bridge'])
    run('ip', ['-n', sw, 'link', 'set', `${p}br`, 'up'])
    names.forEach((n, i) => {
      run('ip', ['netns', 'add', ns[n]]); made.push(ns[n])
      const host = `${p}h${i}`
      const port = `${p}s${i}`
      run('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', port])
      run('ip', ['link', 'set', host, 'netns', ns[n]])
      run('ip', ['link', 'set', port, 'netns', sw])
      run('ip', ['-n', sw, 'link', 'set', port, 'master', `${p}br`])
      run('ip', ['-n', sw, 'link', 'set', port, 'up'])
      run('ip', ['-n', ns[n], 'addr', 'add', `${ips[n]}/24`, 'dev', host])
      run('ip', ['-n', ns[n], 'link', 'set', host, 'up'])
      run('ip', ['-n', ns[n], 'link', 'set', 'lo', 'up'])
    })
  } catch (e) {
    teardown()
    throw e
  }
  return {
    ns,
    ips,
    teardown,
    remaining: () => run('ip', ['netns', 'list']).split('\n').map(l => l.split(' ')[0]).filter(n => n !== undefined && n.startsWith(p))
  }
}

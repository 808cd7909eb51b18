// bcoin regtest full node for the devnet: in memory, tx + address indexes, loopback only, Core's
// regtest prefixes (bcrt1..., tpub) so addresses match what Bitcoin Core and the app produce.
// Usage: node bcoin_node.js <http-port> <wallet-http-port>; prints one JSON line {"ready": true, ...}.
'use strict';

const path = require('path');
const modules = path.resolve(__dirname, '..', 'node_modules');
const networks = require(path.join(modules, 'bcoin/lib/protocol/networks'));

// Must happen before bcoin builds its Network objects.
networks.regtest.addressPrefix = {
  pubkeyhash: 0x6f,
  scripthash: 0xc4,
  witnesspubkeyhash: 0x03,
  witnessscripthash: 0x28,
  bech32: 'bcrt'
};
networks.regtest.keyPrefix = {
  privkey: 0xef,
  xpubkey: 0x043587cf,
  xprivkey: 0x04358394,
  xpubkey58: 'tpub',
  xprivkey58: 'tprv',
  coinType: 1
};

const bcoin = require(path.join(modules, 'bcoin'));

const httpPort = Number(process.argv[2] || 48443);
const walletPort = Number(process.argv[3] || httpPort + 1);

async function main() {
  const node = new bcoin.FullNode({
    network: 'regtest',
    memory: true,
    indexTX: true,
    indexAddress: true,
    listen: false,
    workers: false,
    logLevel: 'error',
    httpHost: '127.0.0.1',
    httpPort: httpPort,
    noAuth: true,
    walletHttpHost: '127.0.0.1',
    walletHttpPort: walletPort,
    walletNoAuth: true,
    walletWitness: true,
    plugins: [require(path.join(modules, 'bcoin/lib/wallet/plugin'))]
  });
  await node.ensure();
  await node.open();
  await node.connect();
  process.stdout.write(JSON.stringify({ready: true, port: httpPort, walletPort: walletPort}) + '\n');

  const stop = async () => {
    try {
      await node.close();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Exit with the parent: stdin closes when node.py's process goes away.
  process.stdin.on('end', stop);
  process.stdin.resume();
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack || err) + '\n');
  process.exit(1);
});

// A real JavaScript router: Hive Gateway (@graphql-hive/gateway-runtime) serving a composed supergraph.
//
//   node router.js <supergraph.graphql>
//
// Listens on a free loopback port and prints "ready <url>" (its GraphQL endpoint). Each subgraph
// request carries the client's own Authorization header (header propagation), so parkgate decides
// what that client may read. (Apollo's JS gateway refuses a supergraph that uses @requiresScopes —
// "feature …/requiresScopes/v0.1 is for: SECURITY but is unsupported" — so parkgate's scopes rule it out.)
'use strict';

const fs = require('fs');
const http = require('http');
const { createGatewayRuntime } = require('@graphql-hive/gateway-runtime');

const gateway = createGatewayRuntime({
  supergraph: fs.readFileSync(process.argv[2], 'utf8'),
  graphqlEndpoint: '/graphql',
  maskedErrors: false, // subgraph errors reach the client as the subgraph sent them (codes, paths)
  propagateHeaders: {
    fromClientToSubgraphs: ({ request }) => {
      const authorization = request.headers.get('authorization');
      return authorization ? { authorization } : {};
    },
  },
});

const server = http.createServer(gateway);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`ready http://127.0.0.1:${server.address().port}/graphql\n`);
});
const stop = () => server.close(() => gateway.dispose().finally(() => process.exit(0)));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

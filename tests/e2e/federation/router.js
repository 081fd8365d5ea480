// A real JavaScript router serving a composed supergraph, one of the two people run:
//
//   node router.js hive-gateway <supergraph.graphql>     Hive Gateway (@graphql-hive/gateway-runtime)
//   node router.js apollo-gateway <supergraph.graphql>   @apollo/gateway behind @apollo/server
//
// Listens on a free loopback port and prints "ready <url>" (its GraphQL endpoint). Each subgraph
// request carries the client's own Authorization header (header propagation), so parkgate decides
// what that client may read. @apollo/gateway refuses a supergraph that uses @requiresScopes ("feature
// …/requiresScopes/v0.1 is for: SECURITY but is unsupported"): compose it from parkgate's SDL without
// them (`server.subgraph_scopes: false`).
'use strict';

const fs = require('fs');
const http = require('http');

const [router, supergraphFile] = process.argv.slice(2);
const supergraphSdl = fs.readFileSync(supergraphFile, 'utf8');

async function hiveGateway() {
  const { createGatewayRuntime } = require('@graphql-hive/gateway-runtime');
  const gateway = createGatewayRuntime({
    supergraph: supergraphSdl,
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
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${server.address().port}/graphql`;
}

async function apolloGateway() {
  const { ApolloServer } = require('@apollo/server');
  const { startStandaloneServer } = require('@apollo/server/standalone');
  const { ApolloGateway, RemoteGraphQLDataSource } = require('@apollo/gateway');

  class PropagatingDataSource extends RemoteGraphQLDataSource {
    willSendRequest({ request, context }) {
      if (context.authorization) request.http.headers.set('authorization', context.authorization);
    }
  }

  const gateway = new ApolloGateway({ supergraphSdl, buildService: ({ url }) => new PropagatingDataSource({ url }) });
  const server = new ApolloServer({ gateway });
  const { url } = await startStandaloneServer(server, {
    listen: { host: '127.0.0.1', port: 0 },
    context: async ({ req }) => ({ authorization: req.headers.authorization }),
  });
  return url;
}

const routers = { 'hive-gateway': hiveGateway, 'apollo-gateway': apolloGateway };
if (!routers[router]) {
  process.stderr.write(`router: unknown router ${router}; one of ${Object.keys(routers).join(', ')}\n`);
  process.exit(2);
}
routers[router]().then(
  (url) => process.stdout.write(`ready ${url}\n`),
  (err) => {
    process.stderr.write(`router: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
process.on('SIGTERM', () => process.exit(0));

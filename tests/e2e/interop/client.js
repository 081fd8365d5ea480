// Connects one third-party GraphQL subscription client to parkgate, subscribes, prints "ready" once
// connected, then the first payload as one line of JSON, and exits. With `until-end`, it prints every
// payload as {"next": …} and exits at the end of the subscription, printed as {"error": …} (what the
// client library handed its sink) or {"complete": true}.
//
//   node client.js <graphql-ws|subscriptions-transport-ws|graphql-sse> <url> <api key> <query> [variables JSON] [until-end]
//
// graphql-ws                  the graphql-transport-ws protocol over WebSocket (url ws://…/graphql)
// subscriptions-transport-ws  the legacy graphql-ws protocol over WebSocket     (url ws://…/graphql)
// graphql-sse                 GraphQL over SSE, distinct connections mode       (url http://…/graphql/stream)
'use strict';

const WebSocket = require('ws');

const [kind, url, key, query, variablesJson, mode] = process.argv.slice(2);
const variables = variablesJson ? JSON.parse(variablesJson) : undefined;
const auth = { Authorization: `Bearer ${key}` };

const fail = (err) => {
  const text = err instanceof Error ? err.stack || err.message
    : (err && typeof err === 'object' && 'code' in err) ? `closed ${err.code} ${err.reason}` : JSON.stringify(err);
  process.stderr.write(`${kind}: ${text}\n`);
  process.exit(1);
};
const ready = () => process.stdout.write('ready\n');
const done = (payload, dispose) => {
  process.stdout.write(JSON.stringify(payload) + '\n');
  Promise.resolve(dispose && dispose()).catch(() => {}).finally(() => process.exit(0));
};
setTimeout(() => fail(new Error('no payload within 30 s')), 30000).unref();
const print = (line) => process.stdout.write(JSON.stringify(line) + '\n');
const described = (err) => Array.isArray(err) ? err  // GraphQL errors
  : (err && typeof err === 'object' && 'extensions' in err) ? [err]  // subscriptions-transport-ws hands over the first
  : (err && typeof err === 'object' && 'code' in err) ? { code: err.code, reason: err.reason } : String(err);
// the sink of the one subscription: the first payload, or (until-end) everything up to its end
const sink = (dispose) => mode === 'until-end' ? {
  next: (payload) => print({ next: payload }),
  error: (err) => { print({ error: described(err) }); process.exit(0); },
  complete: () => { print({ complete: true }); process.exit(0); },
} : {
  next: (payload) => done(payload, dispose),
  error: fail,
  complete: () => fail(new Error('completed without a payload')),
};

if (kind === 'graphql-ws') {
  const { createClient } = require('graphql-ws');
  const client = createClient({
    url, webSocketImpl: WebSocket, connectionParams: auth, retryAttempts: 0, lazy: true,
    on: { connected: ready, error: fail },
  });
  client.subscribe({ query, variables }, sink(() => client.dispose()));
} else if (kind === 'subscriptions-transport-ws') {
  const { SubscriptionClient } = require('subscriptions-transport-ws');
  const client = new SubscriptionClient(url, { connectionParams: auth, reconnect: false }, WebSocket);
  client.onConnected(ready);
  client.onError(fail);
  client.request({ query, variables }).subscribe(sink(() => client.close()));
} else if (kind === 'graphql-sse') {
  const { createClient } = require('graphql-sse');
  const client = createClient({
    url, headers: auth, singleConnection: false, retryAttempts: 0,
    on: { connected: ready },
  });
  const dispose = client.subscribe({ query, variables }, sink(() => { dispose(); client.dispose(); }));
} else {
  fail(new Error(`unknown client ${kind}`));
}

// Composes subgraphs into a supergraph with @apollo/composition, as `rover supergraph compose` does.
//
//   node compose.js <subgraphs.json>      [{"name": "parkgate", "url": "http://…/graphql", "sdl": "…"}, …]
//
// Prints one line of JSON: {"errors": [{code, message}], "hints": [{code, message}], "supergraphSdl": "…" | null}.
'use strict';

const fs = require('fs');
const { parse } = require('graphql');
const { composeServices } = require('@apollo/composition');

const subgraphs = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const result = composeServices(subgraphs.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) })));
const describe = (items) => (items || []).map((item) => ({
  code: (item.definition && item.definition.code) || (item.extensions && item.extensions.code) || 'UNKNOWN',
  message: item.message,
}));
process.stdout.write(JSON.stringify({
  errors: describe(result.errors),
  hints: describe(result.hints),
  supergraphSdl: result.errors ? null : result.supergraphSdl,
}) + '\n');

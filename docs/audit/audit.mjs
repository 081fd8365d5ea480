// The graphql-http audit against a running parkgate: node audit.mjs URL [API_KEY]
import { auditServer } from 'graphql-http';
const url = process.argv[2] ?? 'http://127.0.0.1:8000/graphql';
const key = process.argv[3];
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers ?? {});
  if (key) headers.set('authorization', `Bearer ${key}`);
  return fetch(input, { ...init, headers });
};
const results = await auditServer({ url, fetchFn });
const counts = { ok: 0, warn: 0, error: 0 };
for (const r of results) {
  counts[r.status]++;
  if (r.status !== 'ok') console.log(r.status.toUpperCase(), r.id, r.name, '::', r.reason);
}
console.log(JSON.stringify(counts));

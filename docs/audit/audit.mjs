import { auditServer } from 'graphql-http';
const results = await auditServer({ url: process.argv[2] ?? 'http://127.0.0.1:8000/graphql' });
const counts = {ok:0, warn:0, error:0};
for (const r of results) {
  counts[r.status]++;
  if (r.status !== 'ok') console.log(r.status.toUpperCase(), r.id, r.name, '::', r.reason);
}
console.log(JSON.stringify(counts));

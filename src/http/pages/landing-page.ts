/** `/`: where a person who opens the server's address lands. Links only; nothing about the data. */
export function landingPage(options: { graphiql: boolean }): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>REST aggregation gateway</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#1f2328}a{color:#0969da}code{background:#f6f8fa;padding:.1rem .3rem;border-radius:4px}li{margin:.4rem 0}</style>
</head><body>
<h1>REST aggregation gateway</h1>
<p>One GraphQL endpoint over the identity, analytics and messaging vendors.</p>
<ul>
<li>${options.graphiql ? '<a href="/graphql">GraphiQL</a>: explore the schema and run queries (<code>/graphql</code>)' : 'GraphQL at <code>POST /graphql</code> (GraphiQL is off here: <code>GRAPHIQL_ENABLED</code>)'}</li>
<li><a href="/status">Status</a>: every vendor at a glance (needs an admin token)</li>
<li><a href="/readyz">/readyz</a>, <a href="/healthz">/healthz</a>, <a href="/metrics">/metrics</a>: for load balancers and Prometheus</li>
<li>Documentation: <code>README.md</code> and <code>docs/</code> in the repository</li>
</ul>
</body></html>
`;
}

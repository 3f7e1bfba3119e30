"""The GraphiQL page served to browsers on GET /graphql in development: queries and mutations
over HTTP, subscriptions over graphql-transport-ws. The assets are pinned versions from unpkg
(the browser test serves the same files from `tests/browser/node_modules`)."""

GRAPHIQL_VERSION = "3.8.3"
REACT_VERSION = "18.3.1"
GRAPHQL_WS_VERSION = "5.9.1"

GRAPHIQL_HTML = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>UnityPlan GraphiQL</title>
  <link rel="stylesheet" href="https://unpkg.com/graphiql@{GRAPHIQL_VERSION}/graphiql.min.css">
  <style>body {{ margin: 0; height: 100vh; }} #graphiql {{ height: 100vh; }}</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script crossorigin
    src="https://unpkg.com/react@{REACT_VERSION}/umd/react.production.min.js"></script>
  <script crossorigin
    src="https://unpkg.com/react-dom@{REACT_VERSION}/umd/react-dom.production.min.js"></script>
  <script crossorigin
    src="https://unpkg.com/graphql-ws@{GRAPHQL_WS_VERSION}/umd/graphql-ws.min.js"></script>
  <script crossorigin
    src="https://unpkg.com/graphiql@{GRAPHIQL_VERSION}/graphiql.min.js"></script>
  <script>
    const url = window.location.pathname;
    const socket = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + url;
    // Subscriptions go over graphql-transport-ws, which sends credentials once, in
    // connection_init: one client per Authorization value of GraphiQL's headers editor.
    const fetchers = new Map();
    function fetcherFor(authorization) {{
      if (!fetchers.has(authorization)) {{
        const wsClient = graphqlWs.createClient({{
          url: socket,
          lazy: true,
          connectionParams: authorization ? {{ Authorization: authorization }} : {{}},
        }});
        fetchers.set(authorization, GraphiQL.createFetcher({{ url, wsClient }}));
      }}
      return fetchers.get(authorization);
    }}
    function fetcher(params, options) {{
      const headers = (options && options.headers) || {{}};
      return fetcherFor(headers.Authorization || headers.authorization || "")(params, options);
    }}
    ReactDOM.createRoot(document.getElementById("graphiql"))
      .render(React.createElement(GraphiQL, {{ fetcher }}));
  </script>
</body>
</html>
"""

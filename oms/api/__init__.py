"""The aiohttp application: routes, schemas, problem+json errors, WebSockets and OpenAPI."""

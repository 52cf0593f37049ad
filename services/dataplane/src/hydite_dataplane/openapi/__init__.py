"""The data plane's self-description: /openapi.json (its routes merged with the control plane's),
/routes and the Swagger UI at /docs."""

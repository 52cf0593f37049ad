"""Stage 6 (call provider): carrying an UpstreamCall to a provider and reading its answer.

`transport` is the seam the pipeline calls through, `http11` the HTTP/1.1 client behind it,
`sse` the event framing of streamed answers and `errors` the one map from transport failures
and provider error responses to gateway errors.
"""

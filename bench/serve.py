"""Run the patched emulator for the benchmark: `python -m bench.serve`.

It is `localenv.serve` plus one change to MiniStack's Lambda Runtime API
servers, which are `http.server` handlers: TCP_NODELAY on their connections.
Those handlers send a response's headers and body in two writes. On a
kept-alive connection Nagle's algorithm then holds the body until the client
acknowledges the headers, which the client delays by about 40 ms. Every warm
invocation of a `provided.*` function paid that wait, which Lambda's own
Runtime API does not add. Python functions talk to MiniStack over pipes and
are not affected.
"""

import http.server

from localenv import serve


def main():
    http.server.BaseHTTPRequestHandler.disable_nagle_algorithm = True
    serve.main()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Time N SLS RefreshToken calls made through the official Alibaba Cloud Python SDK.

The baseline that ticketd is compared against: what users cron today (the vendor sample for
`alibabacloud_sls20201230`, Python section). Point it at the ticketd emulator on loopback:

    python3 sdk_refresh.py --endpoint 127.0.0.1:18080 --n 2000 --threads 8

The key comes from ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET (never printed).
One CreateTicket call (not timed) gets a ticket; then N RefreshToken calls are timed, in turn when
--threads is 1, else on a ThreadPoolExecutor. Every answer must hold a non-empty access token.
On success prints one JSON line: {"calls": N, "errors": 0, "seconds": S, "threads": T}; on any
failure prints the first error to stderr and exits 1. Versions are pinned in requirements.txt.
"""

import argparse
import concurrent.futures
import json
import os
import sys
import time

from alibabacloud_sls20201230 import models as sls_20201230_models
from alibabacloud_sls20201230.client import Client as Sls20201230Client
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_util import models as util_models


def create_client(endpoint: str) -> Sls20201230Client:
    """The vendor sample's client, with protocol 'http' to reach the loopback emulator."""
    config = open_api_models.Config(
        access_key_id=os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
        access_key_secret=os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
    )
    config.endpoint = endpoint
    # The only change from the sample: the SDK's operations say HTTPS, and Config.protocol wins.
    config.protocol = "http"
    return Sls20201230Client(config)


def refresh(client: Sls20201230Client, ticket: str, lifetime: int) -> None:
    """One RefreshToken call, made as in the vendor sample; raises unless a token came back."""
    request = sls_20201230_models.RefreshTokenRequest(ticket=ticket, access_token_expiration_time=lifetime)
    response = client.refresh_token_with_options(request, {}, util_models.RuntimeOptions())
    token = response.body.access_token if response.body else None
    if not token:
        raise RuntimeError(f"HTTP {response.status_code}: no accessToken in the answer")


def describe(error: BaseException) -> str:
    """An error's text. SDK errors carry the server's code and message, never the key."""
    return f"{type(error).__name__}: {error}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="host:port of the SLS endpoint, e.g. 127.0.0.1:18080")
    parser.add_argument("--n", type=int, required=True, help="RefreshToken calls to time")
    parser.add_argument("--threads", type=int, default=1, help="1: one call after another; T>1: a pool of T threads")
    parser.add_argument("--token-lifetime", type=int, default=86400, help="accessTokenExpirationTime, seconds")
    args = parser.parse_args()
    if args.n < 1 or args.threads < 1:
        parser.error("--n and --threads must be at least 1")

    # One client for every thread. Reading the SDK (alibabacloud_sls20201230 5.15.1 on
    # alibabacloud-tea-openapi 0.4.6, darabonba-core 1.0.9, alibabacloud-gateway-sls 0.4.2) shows a
    # call keeps its state in objects of its own (request context, headers dict, query): the client
    # only reads its config; the static-AK credential provider is immutable; the gateway only
    # mutates the per-call context. The one shared write is get_rpc_headers() setting
    # self._headers = None, a no-op here since nothing sets RPC headers. The HTTP side is a
    # process-wide requests.Session cached by DaraCore per scheme://host:port (urllib3's pool is
    # thread-safe, 40 connections by default), so clients per thread would share it anyway.
    client = create_client(args.endpoint)

    # Not timed: the ticket that every RefreshToken call presents.
    try:
        created = client.create_ticket_with_options(
            sls_20201230_models.CreateTicketRequest(
                access_token_expiration_time=args.token_lifetime, expiration_time=max(86400, args.token_lifetime)
            ),
            {},
            util_models.RuntimeOptions(),
        )
        ticket = created.body.ticket if created.body else None
        if not ticket:
            raise RuntimeError(f"HTTP {created.status_code}: no ticket in the answer")
    except Exception as error:  # noqa: BLE001 - any failure ends the run
        print(f"CreateTicket failed: {describe(error)}", file=sys.stderr)
        return 1

    errors = 0
    first_error = None
    start = time.perf_counter()
    if args.threads == 1:
        for _ in range(args.n):
            try:
                refresh(client, ticket, args.token_lifetime)
            except Exception as error:  # noqa: BLE001 - counted, the first one is shown
                errors += 1
                first_error = first_error or error
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.threads) as pool:
            futures = [pool.submit(refresh, client, ticket, args.token_lifetime) for _ in range(args.n)]
            for future in futures:  # in submission order, so "first" is deterministic
                error = future.exception()
                if error is not None:
                    errors += 1
                    first_error = first_error or error
    seconds = time.perf_counter() - start

    if errors:
        print(f"{errors} of {args.n} RefreshToken calls failed; first: {describe(first_error)}", file=sys.stderr)
        return 1
    print(json.dumps({"calls": args.n, "errors": 0, "seconds": round(seconds, 6), "threads": args.threads}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

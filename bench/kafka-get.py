#!/usr/bin/env python3
"""kafka-get.py: HTTP GET paging client for bench/kafka.sh.

    kafka-get.py URL RECORDS [--limit L] [--timeout S]

Reads RECORDS records from URL (a Kafka location of ngx_gravitee_module)
with GET ?limit=L, then ?limit=L&cursor=<nextCursor> of the previous page,
on one keep-alive connection, until the cursor is RECORDS records in or
--timeout ran out. Prints one line:

    get records=N pages=P elapsed_s=T rate=R page_p50_ms= page_max_ms= page_sum_ms= empty=E status_err=S unique=U repeated=D

page_sum_ms is the time spent waiting for and reading the pages; the rest
of elapsed_s is this client's own work between them.

The walk stops when the cursor says RECORDS records are behind it (the
offsets it names, each + 1: the benchmark's topics start at offset 0), so
that nothing of a page but its end is read while the clock runs. After
the clock stops, items are counted by their '{"id":' (the JSON content of
the benchmark's records has no such string).
unique and repeated count the items' ids (topic@partition#offset): paging
is exact when unique is RECORDS and repeated 0.
"""

import argparse
import base64
import http.client
import re
import sys
import time
import urllib.parse

CURSOR = re.compile(rb'"nextCursor":"([^"]*)"')
ID = re.compile(rb'\{"id":"([^"]*)"')


def behind(cursor):
    """Records before a cursor's position: its offsets, each + 1."""
    if '@' not in cursor:
        cursor = base64.b64decode(cursor + '=' * (-len(cursor) % 4)).decode()
    n = 0
    for topic in cursor.split(';'):
        for part in topic.split('@', 1)[1].split(','):
            n += int(part.split('#', 1)[1]) + 1
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('url')
    ap.add_argument('records', type=int)
    ap.add_argument('--limit', type=int, default=10000)
    ap.add_argument('--timeout', type=float, default=120)
    a = ap.parse_args()

    u = urllib.parse.urlsplit(a.url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
    got = done = pages = empty = status_err = repeated = 0
    seen = set()
    bodies = []             # ids are checked after the clock stops
    cursor = None
    times = []
    t0 = time.monotonic()
    while done < a.records and time.monotonic() - t0 < a.timeout:
        q = 'limit=%d' % a.limit
        if cursor:
            q += '&cursor=' + urllib.parse.quote(cursor)
        t = time.monotonic()
        conn.request('GET', u.path + '?' + q,
                     headers={'Accept': 'application/json'})
        r = conn.getresponse()
        body = r.read()
        times.append(time.monotonic() - t)
        pages += 1
        if r.status != 200:
            status_err += 1
            sys.stderr.write('kafka-get: status %d: %r\n'
                             % (r.status, body[:200]))
            time.sleep(0.1)
            continue
        bodies.append(body)
        # the cursor is at the end: found from there, not by a scan of the
        # whole page (1.4 ms for 10,000 items, a quarter of a page's time),
        # and it says how far the walk is (counting the items: 1.1 ms more)
        m = CURSOR.match(body, max(body.rfind(b'"nextCursor":"'), 0))
        if m:
            cursor = m.group(1).decode()
        before, done = done, behind(cursor) if cursor else 0
        if done == before:
            empty += 1
    el = time.monotonic() - t0
    for body in bodies:
        got += body.count(b'{"id":')
    for body in bodies:
        for i in ID.finditer(body):
            if i.group(1) in seen:
                repeated += 1
            seen.add(i.group(1))
    times.sort()
    print('get records=%d pages=%d elapsed_s=%.3f rate=%.0f page_p50_ms=%.1f '
          'page_max_ms=%.1f page_sum_ms=%.1f empty=%d status_err=%d unique=%d repeated=%d'
          % (got, pages, el, got / el if el > 0 else 0,
             times[len(times) // 2] * 1e3 if times else -1,
             times[-1] * 1e3 if times else -1, sum(times) * 1e3, empty, status_err,
             len(seen), repeated))
    return 0 if got >= a.records and status_err == 0 else 1


if __name__ == '__main__':
    sys.exit(main())

"""What reading a CRM answer into typed records costs, per record (issue 16 item 3).

    .venv/bin/python -m bench.bench_answers [--rounds R]

The connectors decode each answer as JSON and read it with one reader per shape
(connectors/hubspot/answers.py, connectors/salesforce/answers.py), which checks the parts
syncer reads. This times, per record and in CPU time (`time.process_time`, which other
work on a shared machine inflates less than wall time): decoding the JSON body alone, and
the reader on top of it, for a HubSpot contact page (100 contacts of 25 properties), a
HubSpot events page (1,000 events) and a Salesforce query page (2,000 records of 12
fields). The best of R rounds is reported. The bodies are built in memory: no server.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from connectors.hubspot.answers import contact_page, event, page
from connectors.salesforce.answers import query_page

STAMP = "2026-12-01T10:00:00.000Z"


def _contacts() -> bytes:
    props: dict[str, str | None] = {f"property_{i}": f"value {i}" for i in range(23)}
    props.update(lastmodifieddate=STAMP, unset=None)
    return json.dumps({"results": [
        {"id": str(i), "properties": props, "createdAt": STAMP, "updatedAt": STAMP,
         "archived": False} for i in range(100)],
        "paging": {"next": {"after": "100"}}}).encode()


def _events() -> bytes:
    return json.dumps({"results": [
        {"id": f"event-{i}", "objectId": str(i), "objectType": "CONTACT",
         "eventType": "e_visited_page", "occurredAt": STAMP,
         "properties": {"hs_url": "https://x.test/pricing", "hs_time_on_page": "12"}}
        for i in range(1000)], "paging": {"next": {"after": "1000"}}}).encode()


def _soql() -> bytes:
    return json.dumps({"totalSize": 4000, "done": False,
                       "nextRecordsUrl": "/services/data/v59.0/query/01g-2000",
                       "records": [
        {"attributes": {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{i}"},
         "Id": f"00Q{i:015d}", "Email": f"p{i}@x.test", "FirstName": "Ada",
         "LastName": "Lovelace", "Title": "VP Engineering", "Company": "X",
         "Industry": "Software", "NumberOfEmployees": 250, "Country": "DE",
         "LeadSource": "Web", "SystemModstamp": "2026-12-01T10:00:00.000+0000"}
        for i in range(2000)]}).encode()


def _best(fn: Callable[[], object], rounds: int, repeat: int) -> float:
    """The best per-call CPU seconds of `rounds` rounds of `repeat` calls."""
    times = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(repeat):
            fn()
        times.append((time.process_time() - start) / repeat)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    cases: list[tuple[str, bytes, int, Callable[[bytes], object]]] = [
        ("HubSpot contacts page", _contacts(), 100,
         lambda raw: contact_page(json.loads(raw), "contacts")),
        ("HubSpot events page", _events(), 1000,
         lambda raw: page(json.loads(raw), "events", event)),
        ("Salesforce query page", _soql(), 2000,
         lambda raw: query_page(json.loads(raw), "people")),
    ]
    print("| answer | records | decode µs/record | reader µs/record (on top) |")
    print("| --- | ---: | ---: | ---: |")
    for name, raw, records, read in cases:
        repeat = max(1, 20_000 // records)
        decode = _best(lambda raw=raw: json.loads(raw), args.rounds, repeat)
        both = _best(lambda raw=raw, read=read: read(raw), args.rounds, repeat)
        print(f"| {name} | {records:,} | {decode / records * 1e6:.2f} | "
              f"{(both - decode) / records * 1e6:.2f} |")


if __name__ == "__main__":
    main()

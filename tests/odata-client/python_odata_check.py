#!/usr/bin/env python3
"""Interop check: drive Uplift's OData v4 data API with a third-party client.

Uses python-odata (pip install python-odata==0.8.1, import name `odata`), which
builds its entity classes from our $metadata and then queries and writes
through them. Only the auth header is set by hand (on a requests Session).

Usage: python3 python_odata_check.py <data_base_url> <token>
Prints one line per step and `ALL OK` at the end; exits non-zero on failure.
Set ODATA_CHECK_DEBUG=1 to print every HTTP request/response the library makes.
"""
import os
import sys
import uuid

import requests
from odata import ODataService
from odata.exceptions import NoResultsFound, ODataError


def step(msg):
    print(f"ok   {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def log_exchange(resp, *args, **kwargs):
    req = resp.request
    print(f"  >> {req.method} {req.url}\n  >> body: {req.body!r}\n"
          f"  << {resp.status_code} {resp.headers.get('content-type')} {resp.text[:400]!r}",
          file=sys.stderr)


def main(base_url, token):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    if os.environ.get("ODATA_CHECK_DEBUG"):
        session.hooks["response"].append(log_exchange)

    # 1. Reflect $metadata into entity classes.
    # (python-odata parses whatever $metadata returns as XML, even an HTTP error.)
    try:
        service = ODataService(base_url, reflect_entities=True, session=session,
                               quiet_progress=True)
    except Exception as e:
        raise AssertionError(f"cannot reflect {base_url.rstrip('/')}/$metadata (bad URL or token?): {e!r}")
    sets = sorted(service.entities)
    types = sorted(t for t in service.types if t.startswith("Uplift."))
    check("accounts" in sets and "contacts" in sets, f"entity sets missing: {sets}")
    check("Uplift.Account" in types and "Uplift.Contact" in types, f"types missing: {types}")
    step(f"reflected $metadata: {len(sets)} entity sets {sets}; types {types}")

    Account = service.entities["accounts"]
    Contact = service.entities["contacts"]
    check(Account.id.primary_key, "Account.id is not reflected as the key")

    # 2. Filter on a string property + order_by + limit. Uplift compares text
    #    case-insensitively (like Dataverse), so the checks fold case too.
    q = (service.query(Account)
         .filter(Account.Name.contains("a"))
         .order_by(Account.Name.asc())
         .limit(10))
    rows = q.all()
    names = [a.Name for a in rows]
    check(0 < len(rows) <= 10, f"expected 1..10 rows, got {len(rows)}")
    check(all("a" in n.lower() for n in names), f"filter not applied: {names}")
    check(names == sorted(names, key=str.lower), f"not ordered by Name: {names}")
    step(f"query accounts contains(Name,'a') orderby Name top 10 -> {len(rows)} rows, ordered")

    total = service.query(Account).filter(Account.Name.contains("a")).count()
    check(total >= len(rows), f"$count {total} < page size {len(rows)}")
    step(f"count accounts contains(Name,'a') -> {total}")

    # 3. Fetch one account by key (the library issues $filter=id eq <guid>).
    first = rows[0]
    again = service.query(Account).get(first.id)
    check(again.id == first.id and again.Name == first.Name, "get by key returned another record")
    step(f"get account by key {first.id} -> {again.Name!r}")

    # 4. Follow a lookup with $expand (Contact.Account_ref -> Account).
    c = (service.query(Contact).filter(Contact.Account.not_null())
         .expand(Contact.Account_ref).first())
    check(c is not None, "no contact with an account")
    acc = c.Account_ref
    check(acc is not None and acc.id == c.Account, f"expanded account {acc} != lookup {c.Account}")
    step(f"expand contacts/Account_ref -> {acc.Name!r}")

    # 5. Create, read back, update, re-query, delete. python-odata 0.8.1 does not
    #    reflect ComplexTypes (it types them as plain properties), so Address goes
    #    through as a plain dict; that is enough to round-trip it.
    name = f"python-odata check {uuid.uuid4().hex[:8]}"
    new = Account()
    new.Name = name
    new.Phone = "+1 555 0100"
    new.Address = {"city": "Paris", "country": "FR"}
    service.save(new)
    check(new.id, "created account has no id")
    step(f"created account {new.id} ({name!r})")

    got = service.query(Account).filter(Account.Name == name).one()
    check(got.id == new.id and got.Phone == "+1 555 0100", f"read back mismatch: {got.id} {got.Phone}")
    check((got.Address or {}).get("city") == "Paris", f"Address not round-tripped: {got.Address}")
    step("read back created account by Name (Phone, Address/city)")

    got.Phone = "+1 555 0199"
    service.save(got)  # PATCH, server answers 200 with the record
    check(got.Phone == "+1 555 0199", f"save did not keep the change: {got.Phone}")
    fresh = service.query(Account).get(new.id)
    check(fresh.Phone == "+1 555 0199", f"update not persisted: {fresh.Phone}")
    step("updated Phone via save(), re-query shows the change")

    # With return=minimal the server answers 204 and the library re-reads the
    # record itself from its key URL, accounts(<guid>).
    fresh.Email = "check@example.com"
    service.default_context.save(fresh, extra_headers={"Prefer": "return=minimal"})
    check(fresh.Email == "check@example.com" and fresh.Phone == "+1 555 0199",
          f"re-read after 204 PATCH is stale: {fresh.Email} {fresh.Phone}")
    step("updated Email via save() with return=minimal, library re-read accounts(<guid>)")

    # Lookups are written through the navigation property: the library sends
    # "Account_ref@odata.bind": "accounts(<guid>)" (it drops the plain Account
    # property from inserts, so setting contact.Account directly would be lost).
    contact = Contact()
    contact.FullName = {"first_name": "Check", "last_name": "Python-OData"}
    contact.Account_ref = fresh
    service.save(contact)
    check(contact.Account == new.id, f"contact lookup is {contact.Account}, expected {new.id}")
    service.delete(contact)
    step("created contact bound to the account via Account_ref@odata.bind, deleted it")

    service.delete(fresh)
    try:
        service.query(Account).get(new.id)
        raise AssertionError(f"account {new.id} still there after delete")
    except NoResultsFound:
        pass
    step("deleted account, it is gone")

    print("ALL OK")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} <data_base_url> <token>")
    try:
        main(sys.argv[1], sys.argv[2])
    except (AssertionError, ODataError) as e:
        sys.exit(f"FAIL {type(e).__name__}: {e}")

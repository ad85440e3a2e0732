"""A structure-aware mutation fuzzing campaign on the watchlist, event, command and status parsers.

Coverage-free, seeded and reproducible. Inputs come from valid seeds made with the campaign's
own keys (derived from the seed, so a replay has the same keys) and are then

- mutated as bytes: bit flips, interesting bytes, insertions of JSON/base64 tokens, deletions,
  duplications, truncations, base64url character swaps, splices of two inputs, deep nesting,
  and (rarely) padding past the size limit;
- or built as structures: the JSON of the payload, the protected header, the JWS envelope or
  the sealed watchlist entries is mutated (fields replaced by typed "interesting" values,
  removed, added, duplicated, retyped), then re-sealed with HPKE and re-signed with valid,
  missing, duplicated or wrong keys, so most inputs pass the signature check and reach the
  field validation, the addressee/version/time checks, decryption and the entries decoder.

Contract (docs/protocol.md): every input either parses or raises one subclass of
:class:`protocol.errors.RejectedInput` with a known ``reason`` and a message that does not
repeat what only the sealed entries hold (the agent logs it). Anything else, or more than
``hang_seconds`` (1 s) of CPU time on one input (10 times that on the wall clock), is a crash;
each crash is written to a JSON file (seed, target, parser, input, traceback) that
``--replay`` runs again with the same keys.

The input stream is a function of the seed, except the bytes of HPKE ciphertexts (and so of
the signatures over them): HPKE sealing is randomised (a fresh ephemeral key each time) and
``cryptography`` has no deterministic mode. The sequence of mutations and input lengths, and
hence the ``trace`` digest, are identical for one seed; reason counts may differ by a few
where a byte mutation happens to land on an unchanged value; a crash is reproduced from its
saved bytes.

CLI: ``python -m tools.fuzz --target watchlist|event|command|all --inputs N --seed S
[--crash-dir DIR] [--replay FILE] [--engine mutation|atheris]``. ``--engine atheris`` runs
the same targets, contract and mutators coverage-guided by libFuzzer, when the optional
``atheris`` package is installed.

Modules: ``world`` (keys and valid seeds), ``jsontext`` (JSON canonical_json cannot write),
``values`` (interesting values), ``mutators`` (JSON, byte and JWS mutations), ``targets``
(the parsers under test), ``contract`` (what a parser must do, and the CPU-time budget),
``campaign`` (runs, crash files, replay), ``atheris_engine``, ``cli``.
"""

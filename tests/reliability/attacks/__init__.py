"""Attacks on the wire formats, observed through the running system.

One fleet of three devices on a real TLS Mosquitto: ``lfr-agent`` runs for cam-01 (watchlist
attacks; its clip shows a watchlisted person, so matching proves the old list is in force) and
for cam-02 (command attacks, and the watchlist ops pushed to the wrong device); ``lfr-alerts
listen`` stores what cam-03's certificate publishes on cam-03's own events topic (event
attacks; no agent runs for cam-03, so the test can use its certificate without taking over a
session). Every refusal is observed where an operator would see it: the agent's log line and
its retained status document (``last_rejection``), the listener's rejections table and log.
"""

"""Load: a fleet of simulated devices on the agent's real publishing path, one real broker,
two real ``lfr-alerts listen`` in one shared-subscription group, and what reaches the store.

A simulated device is ``lfr-agent``'s own agent (:func:`agent.app.build_agent`), built from the
device's quickstart config (its identity, client certificate and keys), with its frame stage
replaced: :class:`~tools.load.device.ScheduledAlerts` releases alerts on a schedule instead of
running camera, detector, embedder and tracker. From there on everything is the agent's code:
the watchlist arrives over MQTT and is installed by the agent, each alert is a real match
against it, the agent's event sink signs the event (JPEG probe sealed to the control room with
HPKE, Ed25519 JWS) into the spool and the SQLite outbox, and the agent's loop steps the
publisher, handles messages and publishes status. 50 real agents with their vision pipelines
would need about 7 GB and the CPU of 50 pipelines, which would measure this 2-core machine, not
the event path. The devices run as threads in a few worker processes (``worker``), reniced
(they stand for remote machines), each releasing events at its share of the offered rate
(evenly spaced, random phase).

End-to-end latency is from the device creating the event (the alert's ``observed_at``, taken
from the same clock) to the row being visible in the alert store, found by polling the store
every 20 ms (so figures are upper bounds, up to one poll late): ``received_at`` in the store
has whole seconds only. When events are missing once deliveries stop, the listeners are
restarted (up to 5 times) to tell events stuck in the broker from events lost.

    python -m tools.load run --devices 50 --rate 200 --seconds 300
    python -m tools.load search --devices 50 --rates 100,200,300,400 --seconds 60

Both print a Markdown table (``--out FILE`` keeps it). Nothing here asserts a time; the
reliability tests assert what must hold (stored = produced, exactly once).

Modules: ``device`` (the simulated device: its frame stage and exit policy around the real
agent), ``workers`` (the worker processes: the rig's side and the process's own), ``watch``
(when each row became visible in the store), ``procstats`` (CPU, thread states and memory of
the processes, from /proc), ``results`` (a step's figures and their Markdown), ``rig`` (fleet,
broker, listeners, store; one measured step), ``cli`` (``run`` and ``search``).
"""

"""``lfr-alerts serve``: the officers' console (issue 19), served over HTTPS with logins.

Modules: ``app`` (the route table), ``handler`` (HTTP: hosts, parsing, sessions, CSRF),
``http`` (request parsing and limits), ``context`` (Request/Response/Console), ``layout``,
``login``, ``queue`` (the live queue and ``/api/queue``), ``alert_view`` (one alert and its
decision), ``images``, ``strength``, ``instructions``, ``assets`` + ``static/`` (CSS, JS) and
``server``. The database side is ``central.review_store``.
"""

"""``funduskit serve``: a web page and a versioned HTTP API over the predictor.

- :mod:`.settings` what the server is started with (``funduskit serve`` options);
- :mod:`.jobs` the job database (SQLite under ``--data``) and each job's folders on disk;
- :mod:`.uploads` file names from the outside world made safe to write;
- :mod:`.worker` the one worker thread that predicts the queued jobs, in order;
- :mod:`.limits` the request-size limit (413 before a body is read whole);
- :mod:`.answers` what the API says about a job and its photographs, and the ZIP download;
- :mod:`.app` the FastAPI application: the page (``/``) and ``/api/v1``.

See ``docs/serve.md``.
"""

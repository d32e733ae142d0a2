"""`samstream app`: a web app to annotate video masks with the model in the loop.

Read in this order: `store.py` (the SQLite database: every action an event, undo / redo), `library.py` (the data
root the server may read), `session.py` (`Annotator`: one video's model session and its writes), `server.py`
(the HTTP API), `static/` (the browser UI). Only `server.py` imports FastAPI (the `app` extra).
"""

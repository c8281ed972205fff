"""The REST service (`sentinel serve`): routes, request and response layouts, the champion, streams."""

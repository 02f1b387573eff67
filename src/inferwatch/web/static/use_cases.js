// The use cases page is rendered whole on the server; nothing to fetch.
"use strict";

document.body.dataset.loaded = "yes";

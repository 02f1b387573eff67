// A use case's events: each thumbnail with its annotations drawn (annotate.js).
"use strict";

Annotate.drawAll();

// One event: its input and output images with their annotations drawn (annotate.js).
"use strict";

Annotate.drawAll();

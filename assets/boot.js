// Starts the app (a file, not an inline script, so the Content-Security-Policy needs no exception).
import init from "/failscope.js";
init({ module_or_path: "/failscope_bg.wasm" });

// Run a MicroPython script on MicroPython compiled to WebAssembly (wasm32: 4-byte pointers and 16-byte GC
// blocks, as on the RP2040 and nRF52840), for the 32-bit heap figures of `make bench`.
//
//   node bench/upy_wasm.mjs [--heapsize BYTES] [--cwd DIR] [--path DIR]... SCRIPT.py
//
// Each --path folder (its .py files, and sub-folders holding them, e.g. a package) is copied into the
// interpreter's in-memory filesystem at the same absolute path and put on sys.path in the order given;
// --cwd is created there too and made the current folder (scripts may use paths relative to it). The
// script's output goes to stdout; an uncaught Python exception goes to stderr and the exit status is 1.
// --heapsize is the first heap area (this port adds areas when it is full).
// Package pinned in bench/package.json (install: npm install --prefix bench --no-audit --no-fund).

import fs from "node:fs";
import path from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const FLUSHES = 2; // collections between pieces (one call leaves a few stale pointers; two give a steady figure)

function parseArgs(argv) {
  const opts = { heapsize: 4 * 1024 * 1024, cwd: null, paths: [], script: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--heapsize") opts.heapsize = parseInt(argv[++i], 10);
    else if (a === "--cwd") opts.cwd = path.resolve(argv[++i]);
    else if (a === "--path") opts.paths.push(path.resolve(argv[++i]));
    else if (opts.script === null) opts.script = a;
    else throw new Error("unexpected argument " + a);
  }
  if (opts.script === null || !(opts.heapsize > 0)) {
    throw new Error("usage: node upy_wasm.mjs [--heapsize BYTES] [--cwd DIR] [--path DIR]... SCRIPT.py");
  }
  return opts;
}

function mkdirs(FS, dir) {
  let cur = "";
  for (const part of dir.split("/").filter(Boolean)) {
    cur += "/" + part;
    try {
      FS.mkdir(cur);
    } catch (e) {
      // already there
    }
  }
}

// Copy the .py files of `dir` (recursively, skipping caches and node_modules) to the same path in the FS.
function copyTree(FS, dir) {
  mkdirs(FS, dir);
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, ent.name);
    if (ent.isDirectory()) {
      if (ent.name === "__pycache__" || ent.name === "node_modules" || ent.name.startsWith(".")) continue;
      copyTree(FS, full);
    } else if (ent.isFile() && ent.name.endsWith(".py")) {
      FS.writeFile(full, fs.readFileSync(full));
    }
  }
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(e.message + "\n");
    return 2;
  }
  const mp = await loadMicroPython({
    heapsize: opts.heapsize,
    linebuffer: false,
    stdout: (data) => process.stdout.write(data),
    stderr: (data) => process.stderr.write(data),
  });
  for (const dir of opts.paths) copyTree(mp.FS, dir);
  if (opts.cwd) {
    mkdirs(mp.FS, opts.cwd);
    mp.FS.chdir(opts.cwd);
  }
  const code = fs.readFileSync(opts.script, "utf8");
  // sys.path set here, before the script runs, so the script's own first gc.mem_alloc() sees it built.
  mp.runPython("import sys\nsys.path[:0] = " + JSON.stringify(opts.paths) + "\ndel sys\n");
  // Split at top-level `gc.collect()` lines: each piece is its own runPython call, with collections run
  // between calls first. Inside a call this port's gc.collect() frees little or nothing (garbage made during
  // the call stays allocated), so a heap figure is only the live heap when taken at the start of a call.
  const pieces = code.split(/^(?=gc\.collect\(\)[ \t]*(?:#.*)?$)/m);
  try {
    for (let i = 0; i < pieces.length; i++) {
      if (i > 0) for (let k = 0; k < FLUSHES; k++) mp.runPython('__import__("gc").collect()');
      mp.runPython(pieces[i]);
    }
  } catch (e) {
    process.stderr.write(String(e && e.message ? e.message : e) + "\n");
    return 1;
  }
  return 0;
}

process.exitCode = await main();

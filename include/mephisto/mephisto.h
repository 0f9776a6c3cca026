// <mephisto/mephisto.h>: everything a user's app needs, under one include — the App API (topics, agents,
// streams, tables, timers), scenario support (what `sim` needs to put the app through failure scenarios), the
// codecs, and mephisto::main (the one call that gives a binary every command). Installed with the library
// (`cmake --install`); found with find_package(Mephisto CONFIG REQUIRED) and linked as Mephisto::mephisto.
//
//   #include <mephisto/mephisto.h>
//   int main(int argc, char** argv) { return mephisto::main({my_app()}, argc, argv); }
//
// The declarations behind it (App, Topic, Stream, Table, AppSettings, ScenarioSupport) state their contracts
// where they are declared; the headers this one includes are listed in include/mephisto/README.md.
#pragma once

#include "mephisto/app.h"
#include "mephisto/main.h"
#include "mephisto/testing.h"

// <mephisto/main.h>: mephisto::main(apps, argc, argv), the one call that gives a user's binary every command
// (worker, send, agents, topics, apps, sim, replay, demo, version) over its own apps.
#pragma once

#include "main/main.h"

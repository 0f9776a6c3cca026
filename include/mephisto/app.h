// <mephisto/app.h>: the App API without the command line — App, AppDefinition, AppSettings, Topic, Stream,
// Event, Table, Sink, the codecs and ScenarioSupport. For a library of agents that a binary elsewhere runs.
#pragma once

#include "runtime/app/app.h"
#include "runtime/app/scenario_support.h"
#include "runtime/app/settings.h"
#include "runtime/codec/codec.h"

// <mephisto/testing.h>: TestDriver, for unit tests of a user's agents — records in, outputs and table
// contents out, the app running as one worker in the deterministic simulator (no Kafka, no threads). See
// sim/testing/test_driver.h for its contract.
#pragma once

#include "sim/testing/test_driver.h"

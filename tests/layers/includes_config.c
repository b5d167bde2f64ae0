/* SPDX-License-Identifier: MIT */
/*
 * Not built: the input of the layers.later_header_refused test. A logic
 * module that includes the kafka layer's config.h instead of settings.h
 * must fail the layer check (tests/layers/check_layer.cmake).
 */
#include "settings.h"

#include "config.h"

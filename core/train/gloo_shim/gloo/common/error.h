#pragma once
// See core/train/gloo_shim/README.md: declarations only, nothing here is used.

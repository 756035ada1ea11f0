// The built-in modality families (one file each), listed in modalities/registry.cpp.
#pragma once

#include "modalities/modality.h"

namespace automm {

ModalityFamily numerical_family();    // tabular.cpp
ModalityFamily categorical_family();  // tabular.cpp
ModalityFamily hf_text_family();      // text.cpp
ModalityFamily timm_image_family();   // image.cpp
ModalityFamily clip_family();         // clip.cpp

}  // namespace automm

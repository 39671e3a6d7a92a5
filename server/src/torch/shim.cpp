// A narrow C ABI over torch::jit::Module for what tch 0.26 cannot do: switch only the Dropout
// submodules to training mode (true MC-dropout; BatchNorm keeps its running statistics).
// The shim owns the module; tensors cross the boundary as heap `torch::Tensor*`, the same
// representation tch uses (`Tensor::from_ptr` takes ownership). Every C++ exception is caught here.
#include <torch/script.h>

#include <cstring>
#include <string>

namespace {
char* copy_message(const std::string& s) {
    char* out = static_cast<char*>(std::malloc(s.size() + 1));
    std::memcpy(out, s.c_str(), s.size() + 1);
    return out;
}
}  // namespace

extern "C" {

void* fs_module_load(const char* path, char** err) {
    try {
        auto* m = new torch::jit::Module(torch::jit::load(path));
        m->eval();
        return m;
    } catch (const std::exception& e) {
        *err = copy_message(e.what());
        return nullptr;
    }
}

void fs_module_free(void* m) { delete static_cast<torch::jit::Module*>(m); }

void fs_string_free(char* s) { std::free(s); }

// Puts every submodule whose type name contains "Dropout" in train (on != 0) or eval mode.
// Returns how many were switched, or -1 on error.
int fs_module_set_dropout(void* m, int on, char** err) {
    try {
        auto* module = static_cast<torch::jit::Module*>(m);
        int count = 0;
        for (const auto& child : module->named_modules()) {
            auto type_name = child.value.type()->name();
            if (type_name && type_name->qualifiedName().find("Dropout") != std::string::npos) {
                torch::jit::Module sub = child.value;  // a handle: shares the module object
                sub.train(on != 0);
                ++count;
            }
        }
        return count;
    } catch (const std::exception& e) {
        *err = copy_message(e.what());
        return -1;
    }
}

// Runs forward(input) without gradients. Writes up to two heap tensors into out[0], out[1]
// (a tensor result, or the first two elements of a tuple) and returns how many; -1 on error.
int fs_module_forward(void* m, const torch::Tensor* input, torch::Tensor** out, char** err) {
    try {
        torch::NoGradGuard no_grad;
        auto* module = static_cast<torch::jit::Module*>(m);
        auto result = module->forward({*input});
        if (result.isTensor()) {
            out[0] = new torch::Tensor(result.toTensor());
            return 1;
        }
        if (result.isTuple()) {
            const auto& items = result.toTupleRef().elements();
            int n = 0;
            for (size_t i = 0; i < items.size() && i < 2; ++i) {
                if (!items[i].isTensor()) {
                    *err = copy_message("forward returned a tuple whose elements are not all tensors");
                    for (int k = 0; k < n; ++k) delete out[k];
                    return -1;
                }
                out[n++] = new torch::Tensor(items[i].toTensor());
            }
            return n;
        }
        *err = copy_message("forward returned neither a tensor nor a tuple of tensors");
        return -1;
    } catch (const std::exception& e) {
        *err = copy_message(e.what());
        return -1;
    }
}

}  // extern "C"

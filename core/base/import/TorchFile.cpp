#include "base/import/TorchFile.h"

#include "base/util/AtomicFile.h"
#include "base/util/Errors.h"
#include "base/util/ZipCheck.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <string_view>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>

namespace graftlab {

namespace {

// Storage classes torch.save names in its persistent ids, by the dtype they hold.
const std::map<std::string, std::string>& storageTypes() {
    static const std::map<std::string, std::string> m = {
        {"torch.FloatStorage", "F32"},  {"torch.HalfStorage", "F16"},  {"torch.BFloat16Storage", "BF16"},
        {"torch.DoubleStorage", "F64"}, {"torch.LongStorage", "I64"},  {"torch.IntStorage", "I32"},
        {"torch.ShortStorage", "I16"},  {"torch.CharStorage", "I8"},   {"torch.ByteStorage", "U8"},
        {"torch.BoolStorage", "BOOL"}};
    return m;
}

// The callables (and classes) a pickle may name. Python 3 writes protocol-2 pickles with Python 2 module names
// (fix_imports): both spellings are here.
const std::set<std::string>& allowedGlobals() {
    static const std::set<std::string> s = {
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state", "argparse.Namespace",
        "copyreg._reconstructor", "copy_reg._reconstructor", "builtins.object", "__builtin__.object", "_codecs.encode",
        "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype", "builtins.set", "__builtin__.set",
        "builtins.frozenset", "__builtin__.frozenset",
        // the plain attribute holders LibTorch's torch::serialize::OutputArchive writes (GraftLab's own checkpoints)
        "__torch__.Module"};
    return s;
}

constexpr size_t kMaxStack = 1 << 20;
constexpr size_t kMaxMemo = 1 << 22;

class PickleMachine {
public:
    PickleMachine(TorchFile& f, const unsigned char* data, size_t size, std::string what)
        : file_(f), p_(data), n_(size), what_(std::move(what)) {}

    // Runs the pickle from `pos`; returns the value STOP leaves and advances `pos` past it.
    PickleValue* run(size_t& pos, bool legacyStorages);

private:
    TorchFile& file_;
    const unsigned char* p_;
    size_t n_;
    size_t at_ = 0;
    std::string what_;
    bool legacy_ = false;
    std::vector<PickleValue*> stack_;
    std::vector<size_t> marks_;
    std::map<uint64_t, PickleValue*> memo_;

    [[noreturn]] void fail(const std::string& msg) const {
        throw FileError(file_.path, what_ + ": " + msg + " (at byte " + std::to_string(at_) + ")");
    }
    PickleValue* make(PickleValue::Kind k) {
        file_.arena.emplace_back();
        file_.arena.back().kind = k;
        return &file_.arena.back();
    }
    void need(size_t k) const {
        if (k > n_ - at_) fail("truncated pickle");
    }
    uint64_t le(size_t k) {
        need(k);
        uint64_t v = 0;
        for (size_t i = 0; i < k; ++i) v |= uint64_t(p_[at_ + i]) << (8 * i);
        at_ += k;
        return v;
    }
    std::string bytes(uint64_t k) {
        if (k > n_ - at_) fail("truncated pickle (a string of " + std::to_string(k) + " bytes)");
        std::string s(reinterpret_cast<const char*>(p_ + at_), size_t(k));
        at_ += size_t(k);
        return s;
    }
    std::string line() {
        size_t e = at_;
        while (e < n_ && p_[e] != '\n') ++e;
        if (e >= n_) fail("truncated pickle (unterminated line)");
        std::string s(reinterpret_cast<const char*>(p_ + at_), e - at_);
        at_ = e + 1;
        return s;
    }
    void push(PickleValue* v) {
        if (stack_.size() >= kMaxStack) fail("pickle stack too deep");
        stack_.push_back(v);
    }
    PickleValue* pop() {
        if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("pickle pops an empty stack");
        auto* v = stack_.back();
        stack_.pop_back();
        return v;
    }
    PickleValue* top() {
        if (stack_.empty()) fail("pickle reads an empty stack");
        return stack_.back();
    }
    std::vector<PickleValue*> popToMark() {
        if (marks_.empty()) fail("pickle has no mark to pop to");
        size_t m = marks_.back();
        marks_.pop_back();
        std::vector<PickleValue*> v(stack_.begin() + long(m), stack_.end());
        stack_.resize(m);
        return v;
    }
    void memoPut(uint64_t key, PickleValue* v) {
        if (memo_.size() >= kMaxMemo && !memo_.count(key)) fail("pickle memo too large");
        memo_[key] = v;
    }
    PickleValue* memoGet(uint64_t key) {
        auto it = memo_.find(key);
        if (it == memo_.end()) fail("pickle refers to memo entry " + std::to_string(key) + " that was never stored");
        return it->second;
    }
    PickleValue* intValue(int64_t v) {
        auto* x = make(PickleValue::Kind::Int);
        x->integer = v;
        return x;
    }
    PickleValue* stringValue(std::string s, PickleValue::Kind k = PickleValue::Kind::String) {
        auto* x = make(k);
        x->text = std::move(s);
        return x;
    }
    PickleValue* longValue(const std::string& le) {
        if (le.empty()) return intValue(0);
        if (le.size() > 8) fail("integer of " + std::to_string(le.size()) + " bytes does not fit 64 bits");
        uint64_t v = 0;
        for (size_t i = 0; i < le.size(); ++i) v |= uint64_t(uint8_t(le[i])) << (8 * i);
        if (le.size() < 8 && (uint8_t(le.back()) & 0x80)) v |= ~uint64_t(0) << (8 * le.size());  // sign-extend
        return intValue(int64_t(v));
    }
    PickleValue* global(const std::string& module, const std::string& name) {
        std::string q = module + "." + name;
        // LibTorch names each further module class of an archive __torch__.___torch_mangle_N.Module
        static const std::string mangle = "__torch__.___torch_mangle_";
        if (name == "Module" && module.compare(0, mangle.size(), mangle) == 0 &&
            module.find_first_not_of("0123456789", mangle.size()) == std::string::npos && module.size() > mangle.size())
            q = "__torch__.Module";
        if (!allowedGlobals().count(q) && !storageTypes().count(q))
            fail("refuses the pickled global \"" + q +
                 "\": a checkpoint may name only tensors, storages, (ordered) dicts, argparse.Namespace and numpy scalars; "
                 "GraftLab never runs code from a file, and nothing of this one was run");
        return stringValue(q, PickleValue::Kind::Global);
    }
    void setItems(PickleValue* d, const std::vector<PickleValue*>& kv) {
        if (!d->isMapping()) fail("SETITEMS on a " + d->repr());
        if (kv.size() % 2) fail("SETITEMS with an odd number of items");
        for (size_t i = 0; i < kv.size(); i += 2) d->entries.emplace_back(kv[i], kv[i + 1]);
    }
    void append(PickleValue* l, const std::vector<PickleValue*>& xs) {
        if (l->kind != PickleValue::Kind::List) fail("APPEND to a " + l->repr());
        l->items.insert(l->items.end(), xs.begin(), xs.end());
    }
    PickleValue* persistent(PickleValue* pid);
    PickleValue* reduce(PickleValue* callable, PickleValue* args);
    void build(PickleValue* obj, PickleValue* state);
    std::vector<int64_t> intTuple(const PickleValue* v, const char* what) {
        if (v->kind != PickleValue::Kind::Tuple && v->kind != PickleValue::Kind::List) fail(std::string(what) + " is not a tuple");
        std::vector<int64_t> out;
        for (auto* x : v->items) {
            if (x->kind != PickleValue::Kind::Int) fail(std::string(what) + " holds a non-integer");
            out.push_back(x->integer);
        }
        return out;
    }
};

PickleValue* PickleMachine::persistent(PickleValue* pid) {
    // zip: ('storage', storage_type, key, location, numel); legacy: the same plus view_metadata (None).
    if (pid->kind != PickleValue::Kind::Tuple || pid->items.size() < 5 || pid->items[0]->text != "storage")
        fail("unknown persistent id " + pid->repr());
    auto* type = pid->items[1];
    auto* key = pid->items[2];
    auto* numel = pid->items[4];
    if (type->kind != PickleValue::Kind::Global || !storageTypes().count(type->text))
        fail("persistent id names no storage type: " + pid->repr());
    if (numel->kind != PickleValue::Kind::Int || numel->integer < 0) fail("storage with a bad size " + pid->repr());
    if (pid->items.size() > 5 && pid->items[5]->kind != PickleValue::Kind::None)
        fail("storage views of torch < 0.4 are not supported");
    std::string k = key->kind == PickleValue::Kind::Int ? std::to_string(key->integer) : key->text;
    auto* s = stringValue(k, PickleValue::Kind::Storage);
    s->tensor.dtype = storageTypes().at(type->text);
    s->integer = numel->integer;
    return s;
}

PickleValue* PickleMachine::reduce(PickleValue* callable, PickleValue* args) {
    using K = PickleValue::Kind;
    if (callable->kind != K::Global) fail("calls a " + callable->repr() + ", not a known global");
    if (args->kind != K::Tuple) fail("calls " + callable->text + " without an argument tuple");
    const std::string& f = callable->text;
    const auto& a = args->items;
    if (f == "collections.OrderedDict") return make(K::Dict);
    if (f == "builtins.set" || f == "__builtin__.set" || f == "builtins.frozenset" || f == "__builtin__.frozenset") {
        auto* l = make(K::List);
        if (!a.empty() && (a[0]->kind == K::List || a[0]->kind == K::Tuple)) l->items = a[0]->items;
        return l;
    }
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
        if (a.size() < 4 || a[0]->kind != K::Storage || a[1]->kind != K::Int) fail("malformed tensor " + args->repr());
        auto* t = make(K::Tensor);
        t->tensor.storageKey = a[0]->text;
        t->tensor.dtype = a[0]->tensor.dtype;
        t->tensor.offset = a[1]->integer;
        t->tensor.shape = intTuple(a[2], "a tensor's size");
        t->tensor.stride = intTuple(a[3], "a tensor's stride");
        if (t->tensor.shape.size() != t->tensor.stride.size()) fail("a tensor's size and stride differ in length");
        return t;
    }
    if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
        if (a.empty() || a[0]->kind != K::Tensor) fail("malformed parameter " + args->repr());
        return a[0];
    }
    if (f == "_codecs.encode") {  // protocol 2's spelling of bytes: encode(str, 'latin1')
        if (a.size() != 2 || !a[0]->isString() || !a[1]->isString() || (a[1]->text != "latin1" && a[1]->text != "latin-1"))
            fail("_codecs.encode with other arguments than (str, 'latin1')");
        std::string out;
        const std::string& s = a[0]->text;  // UTF-8 of code points < 256
        for (size_t i = 0; i < s.size(); ++i) {
            unsigned char c = uint8_t(s[i]);
            if (c < 0x80) out.push_back(char(c));
            else if ((c & 0xe0) == 0xc0 && i + 1 < s.size()) out.push_back(char(((c & 0x1f) << 6) | (uint8_t(s[++i]) & 0x3f)));
            else fail("_codecs.encode of a character beyond latin-1");
        }
        return stringValue(out, K::Bytes);
    }
    if (f == "numpy.dtype") {
        if (a.empty() || !a[0]->isString()) fail("numpy.dtype without a type string");
        return stringValue(a[0]->text, K::Object);  // text = the dtype string, e.g. "f8"
    }
    if (f == "numpy.core.multiarray.scalar" || f == "numpy._core.multiarray.scalar") {
        if (a.size() != 2 || a[0]->kind != K::Object || (a[1]->kind != K::Bytes && !a[1]->isString()))
            fail("malformed numpy scalar " + args->repr());
        const std::string& dt = a[0]->text;
        const std::string& raw = a[1]->text;
        auto rawAs = [&](auto zero) {
            decltype(zero) v{};
            if (raw.size() != sizeof v) fail("numpy scalar of " + dt + " with " + std::to_string(raw.size()) + " bytes");
            std::memcpy(&v, raw.data(), sizeof v);
            return v;
        };
        if (dt == "f8") { auto* x = make(K::Float); x->number = rawAs(double{}); return x; }
        if (dt == "f4") { auto* x = make(K::Float); x->number = rawAs(float{}); return x; }
        if (dt == "i8") return intValue(rawAs(int64_t{}));
        if (dt == "i4") return intValue(rawAs(int32_t{}));
        if (dt == "b1") { auto* x = make(K::Bool); x->boolean = rawAs(uint8_t{}) != 0; return x; }
        fail("numpy scalar of dtype " + dt + " is not read");
    }
    if (f == "copyreg._reconstructor" || f == "copy_reg._reconstructor") {
        if (a.size() < 2 || a[0]->kind != K::Global || a[0]->text != "argparse.Namespace") fail("_reconstructor of " + args->repr());
        return stringValue("argparse.Namespace", K::Object);
    }
    if (f == "argparse.Namespace") {
        auto* o = stringValue(f, K::Object);
        return o;
    }
    fail("calls " + f + ", which builds no data");
}

void PickleMachine::build(PickleValue* obj, PickleValue* state) {
    using K = PickleValue::Kind;
    if (obj->kind == K::Tensor || obj->kind == K::Dict) return;  // a tensor's or an OrderedDict's __dict__: not needed
    if (obj->kind == K::Object && (obj->text == "argparse.Namespace" || obj->text == "__torch__.Module")) {
        if (state->kind == K::Tuple && !state->items.empty()) state = state->items[0];  // (dict, slots)
        if (state->kind == K::Dict) obj->entries.insert(obj->entries.end(), state->entries.begin(), state->entries.end());
        return;
    }
    if (obj->kind == K::Object) return;  // numpy.dtype's byte order etc.: little-endian assumed, as everywhere here
    fail("BUILD on a " + obj->repr());
}

PickleValue* PickleMachine::run(size_t& pos, bool legacyStorages) {
    using K = PickleValue::Kind;
    legacy_ = legacyStorages;
    at_ = pos;
    for (;;) {
        need(1);
        unsigned char op = p_[at_++];
        switch (op) {
        case 0x80: le(1); break;                      // PROTO
        case 0x95: le(8); break;                      // FRAME
        case '.': {                                   // STOP
            auto* v = pop();
            pos = at_;
            return v;
        }
        case '(': marks_.push_back(stack_.size()); break;  // MARK
        case '0': pop(); break;                             // POP
        case '1': popToMark(); break;                       // POP_MARK
        case '2': push(top()); break;                       // DUP
        case 'N': push(make(K::None)); break;
        case 0x88: { auto* b = make(K::Bool); b->boolean = true; push(b); break; }
        case 0x89: push(make(K::Bool)); break;
        case 'J': push(intValue(int32_t(uint32_t(le(4))))); break;  // BININT
        case 'K': push(intValue(int64_t(le(1)))); break;            // BININT1
        case 'M': push(intValue(int64_t(le(2)))); break;            // BININT2
        case 0x8a: push(longValue(bytes(le(1)))); break;            // LONG1
        case 0x8b: {                                                // LONG4
            uint64_t k = le(4);
            push(longValue(bytes(k)));
            break;
        }
        case 'I': {  // INT (text)
            std::string s = line();
            if (s == "01" || s == "00") {
                auto* b = make(K::Bool);
                b->boolean = s == "01";
                push(b);
            } else {
                try { push(intValue(std::stoll(s))); } catch (...) { fail("bad INT " + s); }
            }
            break;
        }
        case 'L': {  // LONG (text)
            std::string s = line();
            if (!s.empty() && s.back() == 'L') s.pop_back();
            try { push(intValue(std::stoll(s))); } catch (...) { fail("bad LONG " + s); }
            break;
        }
        case 'G': {  // BINFLOAT, big-endian
            need(8);
            uint64_t v = 0;
            for (int i = 0; i < 8; ++i) v = (v << 8) | p_[at_ + size_t(i)];
            at_ += 8;
            auto* x = make(K::Float);
            std::memcpy(&x->number, &v, 8);
            push(x);
            break;
        }
        case 'F': {  // FLOAT (text)
            std::string s = line();
            auto* x = make(K::Float);
            try { x->number = std::stod(s); } catch (...) { fail("bad FLOAT " + s); }
            push(x);
            break;
        }
        case 0x8c: push(stringValue(bytes(le(1)))); break;                  // SHORT_BINUNICODE
        case 'X': push(stringValue(bytes(le(4)))); break;                   // BINUNICODE
        case 0x8d: push(stringValue(bytes(le(8)))); break;                  // BINUNICODE8
        case 'U': push(stringValue(bytes(le(1)))); break;                   // SHORT_BINSTRING
        case 'T': push(stringValue(bytes(le(4)))); break;                   // BINSTRING
        case 'C': push(stringValue(bytes(le(1)), K::Bytes)); break;         // SHORT_BINBYTES
        case 'B': push(stringValue(bytes(le(4)), K::Bytes)); break;         // BINBYTES
        case 0x8e: push(stringValue(bytes(le(8)), K::Bytes)); break;        // BINBYTES8
        case 'V': push(stringValue(line())); break;                         // UNICODE (raw)
        case 'S': {                                                         // STRING (quoted repr)
            std::string s = line();
            if (s.size() >= 2 && (s.front() == '\'' || s.front() == '"')) s = s.substr(1, s.size() - 2);
            push(stringValue(s));
            break;
        }
        case ')': push(make(K::Tuple)); break;  // EMPTY_TUPLE
        case 't': {                             // TUPLE
            auto* t = make(K::Tuple);
            t->items = popToMark();
            push(t);
            break;
        }
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
            size_t k = size_t(op - 0x84);
            auto* t = make(K::Tuple);
            t->items.resize(k);
            for (size_t i = k; i-- > 0;) t->items[i] = pop();
            push(t);
            break;
        }
        case ']': push(make(K::List)); break;  // EMPTY_LIST
        case 'l': {                            // LIST
            auto* l = make(K::List);
            l->items = popToMark();
            push(l);
            break;
        }
        case 'a': {  // APPEND
            auto* x = pop();
            append(top(), {x});
            break;
        }
        case 'e': {  // APPENDS
            auto xs = popToMark();
            append(top(), xs);
            break;
        }
        case '}': push(make(K::Dict)); break;  // EMPTY_DICT
        case 'd': {                            // DICT
            auto* d = make(K::Dict);
            setItems(d, popToMark());
            push(d);
            break;
        }
        case 's': {  // SETITEM
            auto* v = pop();
            auto* k = pop();
            setItems(top(), {k, v});
            break;
        }
        case 'u': {  // SETITEMS
            auto kv = popToMark();
            setItems(top(), kv);
            break;
        }
        case 0x8f: push(make(K::List)); break;  // EMPTY_SET (read as a list)
        case 0x90: {                            // ADDITEMS
            auto xs = popToMark();
            auto* s = top();
            if (s->kind != K::List) fail("ADDITEMS to a " + s->repr());
            s->items.insert(s->items.end(), xs.begin(), xs.end());
            break;
        }
        case 0x91: {  // FROZENSET
            auto* l = make(K::List);
            l->items = popToMark();
            push(l);
            break;
        }
        case 'c': {  // GLOBAL "module\nname\n"
            std::string module = line();
            std::string name = line();
            push(global(module, name));
            break;
        }
        case 0x93: {  // STACK_GLOBAL
            auto* name = pop();
            auto* module = pop();
            if (!name->isString() || !module->isString()) fail("STACK_GLOBAL without names");
            push(global(module->text, name->text));
            break;
        }
        case 'i': {  // INST "module\nname\n": an instance built by calling the class
            std::string module = line();
            std::string name = line();
            auto* cls = global(module, name);
            auto* args = make(K::Tuple);
            args->items = popToMark();
            push(reduce(cls, args));
            break;
        }
        case 'o': {  // OBJ
            auto xs = popToMark();
            if (xs.empty()) fail("OBJ without a class");
            auto* args = make(K::Tuple);
            args->items.assign(xs.begin() + 1, xs.end());
            push(reduce(xs[0], args));
            break;
        }
        case 'R': {  // REDUCE
            auto* args = pop();
            auto* f = pop();
            push(reduce(f, args));
            break;
        }
        case 0x81: {  // NEWOBJ cls.__new__(cls, *args)
            auto* args = pop();
            auto* cls = pop();
            if (cls->kind != K::Global || (cls->text != "argparse.Namespace" && cls->text != "__torch__.Module"))
                fail("NEWOBJ of " + cls->repr());
            (void)args;
            push(stringValue(cls->text, K::Object));
            break;
        }
        case 0x92: {  // NEWOBJ_EX
            pop();
            pop();
            auto* cls = pop();
            if (cls->kind != K::Global || cls->text != "argparse.Namespace") fail("NEWOBJ_EX of " + cls->repr());
            push(stringValue(cls->text, K::Object));
            break;
        }
        case 'b': {  // BUILD
            auto* state = pop();
            build(top(), state);
            break;
        }
        case 'Q': push(persistent(pop())); break;  // BINPERSID
        case 'P': {                                // PERSID (text id): not written by torch.save
            fail("text persistent id \"" + line() + "\"");
        }
        case 'p': {  // PUT
            std::string s = line();
            uint64_t k = 0;
            try { k = std::stoull(s); } catch (...) { fail("bad PUT " + s); }
            memoPut(k, top());
            break;
        }
        case 'q': memoPut(le(1), top()); break;                      // BINPUT
        case 'r': memoPut(le(4), top()); break;                      // LONG_BINPUT
        case 0x94: memoPut(memo_.size(), top()); break;              // MEMOIZE
        case 'g': {                                                   // GET
            std::string s = line();
            uint64_t k = 0;
            try { k = std::stoull(s); } catch (...) { fail("bad GET " + s); }
            push(memoGet(k));
            break;
        }
        case 'h': push(memoGet(le(1))); break;  // BINGET
        case 'j': push(memoGet(le(4))); break;  // LONG_BINGET
        default: {
            char buf[8];
            std::snprintf(buf, sizeof buf, "0x%02x", op);
            fail(std::string("unknown pickle opcode ") + buf + " (not a torch.save file, or damaged)");
        }
        }
    }
}


// pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2) after PROTO: LONG1 of 10 bytes, little-endian.
const std::string kLegacyMagic("\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 12);

void readLegacy(TorchFile& f) {
    const auto* d = reinterpret_cast<const unsigned char*>(f.bytes->data());
    size_t n = f.bytes->size(), pos = 0;
    auto unpickle = [&](const char* what) {
        PickleMachine m(f, d, n, std::string("legacy torch.save file, ") + what);
        return m.run(pos, true);
    };
    pos = 2 + kLegacyMagic.size();  // the magic number (an 80-bit integer), checked by the caller on the raw bytes
    if (pos >= n || d[pos] != '.') throw FileError(f.path, "legacy torch.save file with a damaged magic number");
    ++pos;
    auto* proto = unpickle("protocol version");
    if (proto->kind != PickleValue::Kind::Int || proto->integer != 1001)
        throw FileError(f.path, "legacy torch.save file with protocol version " + proto->repr() + " (1001 expected)");
    auto* sysInfo = unpickle("system info");
    if (auto* le = sysInfo->get("little_endian"); le && le->kind == PickleValue::Kind::Bool && !le->boolean)
        throw FileError(f.path, "was written on a big-endian machine: not supported");
    f.root = unpickle("object");
    auto* keys = unpickle("storage keys");
    if (keys->kind != PickleValue::Kind::List) throw FileError(f.path, "legacy torch.save file: storage key list missing");
    // Every storage the object named, with its dtype: the keys list gives their order in the file.
    std::map<std::string, std::string> dtypes;
    for (const auto& v : f.arena)
        if (v.kind == PickleValue::Kind::Storage) dtypes[v.text] = v.tensor.dtype;
    for (auto* k : keys->items) {
        std::string key = k->kind == PickleValue::Kind::Int ? std::to_string(k->integer) : k->text;
        auto it = dtypes.find(key);
        if (it == dtypes.end()) throw FileError(f.path, "legacy torch.save file: storage \"" + key + "\" listed but never used");
        if (n - pos < 8) throw FileError(f.path, "truncated: storage \"" + key + "\" is missing (the file was cut short)");
        uint64_t numel = 0;
        for (int i = 0; i < 8; ++i) numel |= uint64_t(d[pos + size_t(i)]) << (8 * i);
        pos += 8;
        uint64_t es = uint64_t(TorchFile::elementSize(it->second));
        if (numel > (n - pos) / es)
            throw FileError(f.path, "truncated: storage \"" + key + "\" holds " + std::to_string(numel) + " elements, the file only " +
                                        std::to_string((n - pos) / es) + " more");
        f.storages[key] = {it->second, int64_t(numel), f.bytes->data() + pos};
        pos += size_t(numel * es);
    }
}

void readZip(TorchFile& f) {
    const FileBytes& b = *f.bytes;
    auto entries = readZipDirectory(b.data(), b.size(), f.path, [&b](uint64_t at, uint64_t n) { b.release(b.data() + at, size_t(n)); });
    const ZipEntry* pkl = nullptr;
    std::string prefix;
    for (const auto& e : entries) {
        auto slash = e.name.find('/');
        if (slash != std::string::npos && e.name.substr(slash) == "/data.pkl") {
            pkl = &e;
            prefix = e.name.substr(0, slash + 1);
        }
    }
    if (!pkl) throw FileError(f.path, "a zip archive without data.pkl: not a torch.save file (a TorchScript module or another zip?)");
    if (pkl->method != 0) throw FileError(f.path, "data.pkl is compressed: not a torch.save file");
    size_t pos = size_t(pkl->dataOffset);
    PickleMachine m(f, reinterpret_cast<const unsigned char*>(f.bytes->data()), size_t(pkl->dataOffset + pkl->size), "data.pkl");
    f.root = m.run(pos, false);
    std::map<std::string, const ZipEntry*> byName;
    for (const auto& e : entries) byName[e.name] = &e;
    for (const auto& v : f.arena) {
        if (v.kind != PickleValue::Kind::Storage || f.storages.count(v.text)) continue;
        auto it = byName.find(prefix + "data/" + v.text);
        if (it == byName.end()) throw FileError(f.path, "storage \"" + v.text + "\" is missing from the archive (damaged file)");
        const ZipEntry& e = *it->second;
        if (e.method != 0) throw FileError(f.path, "storage \"" + v.text + "\" is compressed: not a torch.save file");
        uint64_t es = uint64_t(TorchFile::elementSize(v.tensor.dtype));
        if (uint64_t(v.integer) > e.size / es)
            throw FileError(f.path, "storage \"" + v.text + "\" is shorter (" + std::to_string(e.size) + " bytes) than the " +
                                        std::to_string(v.integer) + " elements the pickle says");
        f.storages[v.text] = {v.tensor.dtype, v.integer, f.bytes->data() + e.dataOffset};
    }
}

}  // namespace

const PickleValue* PickleValue::get(const std::string& key) const {
    if (!isMapping()) return nullptr;
    for (const auto& [k, v] : entries)
        if (k->isString() && k->text == key) return v;
    return nullptr;
}

std::string PickleValue::repr(int depth) const {
    switch (kind) {
    case Kind::None: return "None";
    case Kind::Bool: return boolean ? "True" : "False";
    case Kind::Int: return std::to_string(integer);
    case Kind::Float: {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", number);
        return buf;
    }
    case Kind::String: return "'" + (text.size() > 60 ? text.substr(0, 60) + "..." : text) + "'";
    case Kind::Bytes: return "bytes(" + std::to_string(text.size()) + ")";
    case Kind::Global: return "global " + text;
    case Kind::Storage: return "storage " + text;
    case Kind::Tensor: {
        std::string s = "tensor " + tensor.dtype + "[";
        for (size_t i = 0; i < tensor.shape.size(); ++i) s += (i ? ", " : "") + std::to_string(tensor.shape[i]);
        return s + "]";
    }
    case Kind::Mark: return "mark";
    case Kind::List:
    case Kind::Tuple: {
        if (depth > 1) return kind == Kind::List ? "[...]" : "(...)";
        std::string s = kind == Kind::List ? "[" : "(";
        for (size_t i = 0; i < items.size() && i < 6; ++i) s += (i ? ", " : "") + items[i]->repr(depth + 1);
        if (items.size() > 6) s += ", ...";
        return s + (kind == Kind::List ? "]" : ")");
    }
    case Kind::Dict:
    case Kind::Object: {
        std::string s = kind == Kind::Object ? text + "(" : "{";
        if (depth > 1) return s + "...)";
        for (size_t i = 0; i < entries.size() && i < 6; ++i)
            s += (i ? ", " : "") + entries[i].first->repr(depth + 1) + ": " + entries[i].second->repr(depth + 1);
        if (entries.size() > 6) s += ", ...";
        return s + (kind == Kind::Object ? ")" : "}");
    }
    }
    return "?";
}

int TorchFile::elementSize(const std::string& dtype) {
    static const std::map<std::string, int> m = {{"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F64", 8}, {"I64", 8},
                                                 {"I32", 4}, {"I16", 2},  {"I8", 1},   {"U8", 1},  {"BOOL", 1}};
    auto it = m.find(dtype);
    return it == m.end() ? 0 : it->second;
}

const char* TorchFile::tensorData(const PickledTensor& t) const {
    auto it = storages.find(t.storageKey);
    if (it == storages.end()) throw FileError(path, "a tensor refers to storage \"" + t.storageKey + "\", which the file lacks");
    const StorageBytes& s = it->second;
    // The furthest element the tensor reaches, checked against the storage without overflow.
    if (t.offset < 0) throw FileError(path, "a tensor has a negative storage offset");
    int64_t last = t.offset;
    bool empty = false;
    for (size_t i = 0; i < t.shape.size(); ++i) {
        if (t.shape[i] < 0 || t.stride[i] < 0) throw FileError(path, "a tensor has a negative size or stride");
        if (t.shape[i] == 0) empty = true;
        if (t.shape[i] > 0 && t.stride[i] > (std::numeric_limits<int64_t>::max() - last) / std::max<int64_t>(1, t.shape[i] - 1))
            throw FileError(path, "a tensor's extent overflows");
        last += (t.shape[i] - 1) * t.stride[i];
    }
    if (!empty && last >= s.numel)
        throw FileError(path, "a tensor reaches element " + std::to_string(last) + " of storage \"" + t.storageKey + "\", which holds " +
                                  std::to_string(s.numel));
    return s.data + t.offset * elementSize(s.dtype);
}

std::unique_ptr<TorchFile> parseTorchFile(std::shared_ptr<const FileBytes> bytes, const std::string& path) {
    auto f = std::make_unique<TorchFile>();
    f->path = path;
    f->bytes = std::move(bytes);
    const std::string_view b(f->bytes->data(), f->bytes->size());
    if (b.size() >= 4 && b.compare(0, 4, "PK\x03\x04") == 0) {
        f->format = "zip";
        readZip(*f);
    } else if (b.size() >= 2 + kLegacyMagic.size() && uint8_t(b[0]) == 0x80 && b.compare(2, kLegacyMagic.size(), kLegacyMagic) == 0) {
        f->format = "legacy";
        readLegacy(*f);
    } else if (b.size() >= 2 && uint8_t(b[0]) == 0x80) {
        throw FileError(path, "a bare pickle, not a torch.save file (no storages): not a checkpoint GraftLab can read");
    } else {
        throw FileError(path, "not a PyTorch checkpoint (neither torch.save's zip format nor its legacy format)");
    }
    if (!f->root) throw FileError(path, "torch.save file without an object");
    return f;
}

std::unique_ptr<TorchFile> readTorchFile(const std::string& path) { return parseTorchFile(FileBytes::map(path), path); }

std::shared_ptr<FileBytes> FileBytes::map(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw FileError(path, std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw FileError(path, "not a regular file");
    }
    std::shared_ptr<FileBytes> b(new FileBytes());
    b->size_ = size_t(st.st_size);
    if (b->size_ > 0) {
        void* p = ::mmap(nullptr, b->size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            ::close(fd);
            throw FileError(path, std::string("cannot map: ") + std::strerror(e));
        }
        b->data_ = static_cast<const char*>(p);
        b->mapped_ = true;
    } else {
        b->data_ = b->held_.data();
    }
    ::close(fd);
    return b;
}

std::shared_ptr<FileBytes> FileBytes::hold(std::string bytes) {
    std::shared_ptr<FileBytes> b(new FileBytes());
    b->held_ = std::move(bytes);
    b->data_ = b->held_.data();
    b->size_ = b->held_.size();
    return b;
}

FileBytes::~FileBytes() {
    if (mapped_) ::munmap(const_cast<char*>(data_), size_);
}

void FileBytes::release(const char* p, size_t n) const {
    if (!mapped_ || n == 0) return;
    static const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
    uintptr_t begin = (uintptr_t(p) + page - 1) / page * page, end = (uintptr_t(p) + n) / page * page;
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

}  // namespace graftlab

/* The items of a packet's records, compiled: what
 * teltotwist.gateway.items.tracker_records() builds in Python, in one call.
 *
 * Built only with TELTOTWIST_COMPILE=1 (setup.py). It reads records the
 * decoder already validated, never bytes from the network, and whatever it
 * does not expect it leaves to the Python code: it then returns None and
 * tracker_records() builds the items in Python. tests/test_items_compiled.py
 * checks that both give the same items, JSON lines byte for byte.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* AvlRecord's fields, in its tuple. */
enum {
    F_TIMESTAMP, F_PRIORITY, F_LONGITUDE, F_LATITUDE, F_ALTITUDE, F_ANGLE,
    F_SATELLITES, F_SPEED, F_EVENT_ID, F_IO, F_IO_LAYOUT, F_GENERATION_TYPE,
    F_WIRE, RECORD_FIELDS
};

#define MAX_TIMESTAMP_MS 253402300799999ULL /* 9999-12-31T23:59:59.999Z */

/* What a step returns: done, or left to the Python code (CANNOT), or a
 * Python error (FAILED, an exception is set). */
#define DONE 0
#define CANNOT 1
#define FAILED -1

static PyObject *name_imei, *name_codec, *name_record,
    *name_received_at_ms, *name_id, *name_attributes, *name_line;

/* A growing byte buffer: one JSON line. */
typedef struct {
    char *data;
    Py_ssize_t length;
    Py_ssize_t capacity;
} Line;

static int
reserve(Line *line, Py_ssize_t more)
{
    if (more <= line->capacity - line->length) {
        return DONE;
    }
    if (more > PY_SSIZE_T_MAX / 2 - line->length) {
        PyErr_NoMemory();
        return FAILED;
    }
    Py_ssize_t capacity = line->capacity ? line->capacity : 1024;
    while (capacity < line->length + more) {
        capacity *= 2;
    }
    char *data = PyMem_Realloc(line->data, capacity);
    if (data == NULL) {
        PyErr_NoMemory();
        return FAILED;
    }
    line->data = data;
    line->capacity = capacity;
    return DONE;
}

static int
put(Line *line, const char *text, Py_ssize_t size)
{
    if (reserve(line, size) != DONE) {
        return FAILED;
    }
    memcpy(line->data + line->length, text, size);
    line->length += size;
    return DONE;
}

#define PUT_LITERAL(line, text) put((line), (text), sizeof(text) - 1)

#define STEP(call)                                                           \
    do {                                                                     \
        int outcome_ = (call);                                               \
        if (outcome_ != DONE) {                                              \
            return outcome_;                                                 \
        }                                                                    \
    } while (0)

static const char HEX[] = "0123456789abcdef";

/* Room for a JSON string of *size* units of at most *width* bytes each, its
 * opening quote put: where the rest goes, or NULL (an exception is set). */
static char *
open_string(Line *line, Py_ssize_t size, Py_ssize_t width)
{
    if (size > (PY_SSIZE_T_MAX - 2) / (2 * width)) {
        PyErr_NoMemory();
        return NULL;
    }
    if (reserve(line, 2 + width * size) != DONE) {
        return NULL;
    }
    char *out = line->data + line->length;
    *out++ = '"';
    return out;
}

/* A str as a JSON string, escaped as orjson escapes it. */
static int
put_string(Line *line, PyObject *text)
{
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &size);
    if (utf8 == NULL) {
        PyErr_Clear(); /* a lone surrogate: orjson refuses it, and so will Python */
        return CANNOT;
    }
    char *out = open_string(line, size, 6); /* \u00XX at the most */
    if (out == NULL) {
        return FAILED;
    }
    for (Py_ssize_t index = 0; index < size; index++) {
        unsigned char byte = (unsigned char)utf8[index];
        if (byte >= 0x20 && byte != '"' && byte != '\\') {
            *out++ = (char)byte;
            continue;
        }
        *out++ = '\\';
        switch (byte) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\b': *out++ = 'b'; break;
        case '\f': *out++ = 'f'; break;
        case '\n': *out++ = 'n'; break;
        case '\r': *out++ = 'r'; break;
        case '\t': *out++ = 't'; break;
        default:
            memcpy(out, "u00", 3);
            out += 3;
            *out++ = HEX[byte >> 4];
            *out++ = HEX[byte & 0xF];
        }
    }
    *out++ = '"';
    line->length = out - line->data;
    return DONE;
}

/* Bytes as a JSON string of lowercase hex. */
static int
put_hex(Line *line, PyObject *bytes)
{
    Py_ssize_t size = PyBytes_GET_SIZE(bytes);
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(bytes);
    char *out = open_string(line, size, 2);
    if (out == NULL) {
        return FAILED;
    }
    for (Py_ssize_t index = 0; index < size; index++) {
        *out++ = HEX[data[index] >> 4];
        *out++ = HEX[data[index] & 0xF];
    }
    *out++ = '"';
    line->length = out - line->data;
    return DONE;
}

/* *value* in decimal, after a minus sign if *negative*. */
static int
put_decimal(Line *line, unsigned long long value, int negative)
{
    char digits[24];
    char *start = digits + sizeof digits;
    do {
        *--start = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    if (negative) {
        *--start = '-';
    }
    return put(line, start, digits + sizeof digits - start);
}

/* An int within orjson's range (64-bit signed or unsigned). */
static int
put_int(Line *line, PyObject *number)
{
    int overflow;
    long long value = PyLong_AsLongLongAndOverflow(number, &overflow);
    if (overflow == 0) {
        if (value == -1 && PyErr_Occurred()) {
            return FAILED;
        }
        return value < 0 ? put_decimal(line, 0ULL - (unsigned long long)value, 1)
                         : put_decimal(line, (unsigned long long)value, 0);
    }
    if (overflow > 0) {
        unsigned long long large = PyLong_AsUnsignedLongLong(number);
        if (large == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return CANNOT;
        }
        return put_decimal(line, large, 0);
    }
    return CANNOT;
}

#define SEVEN_PLACES 10000000LL

/* *value* written in full when it is an integer number of 1e-7 (coordinates
 * and most scaled IO values are) between 1e-5 and 1e8: then those digits,
 * without the trailing zeros, are its shortest repr, orjson's too. CANNOT
 * for any other value. */
static int
put_short_float(Line *line, double value)
{
    double scaled = value * (double)SEVEN_PLACES;
    if (!(fabs(scaled) >= 100.0 && fabs(scaled) < 1e15)) {
        return CANNOT;
    }
    long long units = llround(scaled);
    if ((double)units / (double)SEVEN_PLACES != value) {
        return CANNOT;
    }
    unsigned long long magnitude = units < 0 ? 0ULL - (unsigned long long)units
                                             : (unsigned long long)units;
    char fraction[8];
    unsigned long long decimals = magnitude % SEVEN_PLACES;
    for (int place = 6; place >= 0; place--) {
        fraction[place] = (char)('0' + decimals % 10);
        decimals /= 10;
    }
    int places = 7;
    while (places > 1 && fraction[places - 1] == '0') {
        places--;
    }
    STEP(put_decimal(line, magnitude / SEVEN_PLACES, units < 0));
    STEP(PUT_LITERAL(line, "."));
    return put(line, fraction, places);
}

/* A finite float as orjson writes it: Python's repr, except that a number
 * from 1e-5 up to 1e-4 is written in full and an exponent has no leading
 * zeros ("1e-7", "1e+16"). */
static int
put_float(Line *line, double value)
{
    if (!isfinite(value)) {
        return CANNOT;
    }
    int outcome = put_short_float(line, value);
    if (outcome != CANNOT) {
        return outcome;
    }
    char *text = PyOS_double_to_string(value, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (text == NULL) {
        return FAILED;
    }
    int result;
    char *e = strchr(text, 'e');
    if (e == NULL) {
        result = put(line, text, (Py_ssize_t)strlen(text));
    }
    else {
        int exponent = atoi(e + 1);
        char *mantissa = text;
        char buffer[64];
        int size;
        if (exponent == -5) {
            /* "-1.5e-05" -> "-0.000015" */
            int at = 0;
            if (*mantissa == '-') {
                buffer[at++] = '-';
                mantissa++;
            }
            memcpy(buffer + at, "0.0000", 6);
            at += 6;
            for (char *digit = mantissa; digit < e && at < (int)sizeof buffer; digit++) {
                if (*digit != '.') {
                    buffer[at++] = *digit;
                }
            }
            size = at;
        }
        else {
            size = snprintf(buffer, sizeof buffer, "%.*se%s%d", (int)(e - mantissa),
                            mantissa, exponent > 0 ? "+" : "", exponent);
        }
        result = size > 0 && size < (int)sizeof buffer ? put(line, buffer, size)
                                                       : CANNOT;
    }
    PyMem_Free(text);
    return result;
}

/* A value of a record's fields, IO or attributes, as orjson writes it with
 * the record JSON's default (bytes as hex). */
static int
put_value(Line *line, PyObject *value)
{
    if (PyLong_CheckExact(value)) {
        return put_int(line, value);
    }
    if (PyFloat_CheckExact(value)) {
        return put_float(line, PyFloat_AS_DOUBLE(value));
    }
    if (PyUnicode_CheckExact(value)) {
        return put_string(line, value);
    }
    if (PyBytes_CheckExact(value)) {
        return put_hex(line, value);
    }
    return CANNOT;
}

/* Two digits of *value* (0 to 99) at *out*. */
static void
two_digits(char *out, int value)
{
    out[0] = (char)('0' + value / 10);
    out[1] = (char)('0' + value % 10);
}

/* "2019-06-10T10:04:46.000Z", in quotes, for milliseconds since the epoch
 * (at most MAX_TIMESTAMP_MS: a four-digit year). */
static int
put_timestamp(Line *line, unsigned long long milliseconds)
{
    time_t seconds = (time_t)(milliseconds / 1000);
    struct tm calendar;
    if (gmtime_r(&seconds, &calendar) == NULL) {
        return CANNOT;
    }
    char text[] = "\"YYYY-MM-DDTHH:MM:SS.mmmZ\"";
    int year = calendar.tm_year + 1900;
    unsigned fraction = (unsigned)(milliseconds % 1000);
    two_digits(text + 1, year / 100);
    two_digits(text + 3, year % 100);
    two_digits(text + 6, calendar.tm_mon + 1);
    two_digits(text + 9, calendar.tm_mday);
    two_digits(text + 12, calendar.tm_hour);
    two_digits(text + 15, calendar.tm_min);
    two_digits(text + 18, calendar.tm_sec);
    text[21] = (char)('0' + fraction / 100);
    two_digits(text + 22, (int)(fraction % 100));
    return put(line, text, sizeof text - 1);
}

/* ,"name":value for each of the fixed fields after "timestamp". */
static int
put_fields(Line *line, PyObject *record)
{
#define NAME(text) {text, sizeof(text) - 1}
    static const struct {
        const char *text;
        Py_ssize_t size;
    } names[] = {
        NAME(",\"priority\":"), NAME(",\"longitude\":"), NAME(",\"latitude\":"),
        NAME(",\"altitude\":"), NAME(",\"angle\":"), NAME(",\"satellites\":"),
        NAME(",\"speed\":"), NAME(",\"event_id\":"),
    };
#undef NAME
    for (int field = F_PRIORITY; field <= F_EVENT_ID; field++) {
        STEP(put(line, names[field - F_PRIORITY].text, names[field - F_PRIORITY].size));
        PyObject *value = PyTuple_GET_ITEM(record, field);
        if (field == F_LONGITUDE || field == F_LATITUDE) {
            if (!PyFloat_CheckExact(value)) {
                return CANNOT;
            }
            STEP(put_float(line, PyFloat_AS_DOUBLE(value)));
        }
        else {
            if (!PyLong_CheckExact(value)) {
                return CANNOT;
            }
            STEP(put_int(line, value));
        }
    }
    PyObject *generation_type = PyTuple_GET_ITEM(record, F_GENERATION_TYPE);
    if (generation_type != Py_None) {
        if (!PyLong_CheckExact(generation_type)) {
            return CANNOT;
        }
        STEP(PUT_LITERAL(line, ",\"generation_type\":"));
        STEP(put_int(line, generation_type));
    }
    return DONE;
}

/* {"key":value,...} for a dict keyed by str, or by int as orjson's
 * OPT_NON_STR_KEYS writes it (the IO's ids). */
static int
put_object(Line *line, PyObject *dict)
{
    STEP(PUT_LITERAL(line, "{"));
    Py_ssize_t position = 0;
    PyObject *key, *value;
    int first = 1;
    while (PyDict_Next(dict, &position, &key, &value)) {
        if (!first) {
            STEP(PUT_LITERAL(line, ","));
        }
        first = 0;
        if (PyUnicode_CheckExact(key)) {
            STEP(put_string(line, key));
        }
        else if (PyLong_CheckExact(key)) {
            STEP(PUT_LITERAL(line, "\""));
            STEP(put_int(line, key));
            STEP(PUT_LITERAL(line, "\""));
        }
        else {
            return CANNOT;
        }
        STEP(PUT_LITERAL(line, ":"));
        STEP(put_value(line, value));
    }
    return PUT_LITERAL(line, "}");
}

/* The attribute value of the integer *value* by *rule* (bits of its two's
 * complement or 0, numerator, denominator: catalogue.values.IntegerRule), as
 * the rule's Python converter computes it; NULL, with no error set, where
 * that converter must. */
static PyObject *
apply_rule(PyObject *value, PyObject *rule)
{
    if (!PyTuple_CheckExact(rule) || PyTuple_GET_SIZE(rule) != 3) {
        return NULL;
    }
    long bits = PyLong_AsLong(PyTuple_GET_ITEM(rule, 0));
    long long numerator = PyLong_AsLongLong(PyTuple_GET_ITEM(rule, 1));
    long long denominator = PyLong_AsLongLong(PyTuple_GET_ITEM(rule, 2));
    unsigned long long raw = PyLong_AsUnsignedLongLong(value);
    if (PyErr_Occurred() || bits < 0 || bits > 64 || denominator <= 0) {
        PyErr_Clear();
        return NULL;
    }
    long long number;
    if (bits == 64) {
        number = (long long)raw; /* two's complement of all 64 bits */
    }
    else if (bits > 0 && raw >= 1ULL << (bits - 1) && raw < 1ULL << bits) {
        number = (long long)raw - (long long)(1ULL << bits);
    }
    else if (raw <= (unsigned long long)LLONG_MAX) {
        number = (long long)raw;
    }
    else {
        return NULL;
    }
    long long product;
    if (__builtin_mul_overflow(number, numerator, &product)) {
        return NULL;
    }
    if (denominator == 1) {
        return PyLong_FromLongLong(product);
    }
    /* Exact as doubles, so one correctly rounded division: Python's too. */
    const long long exact = 1LL << 53;
    if (product < -exact || product > exact || denominator > exact) {
        return NULL;
    }
    return PyFloat_FromDouble((double)product / (double)denominator);
}

/* The attributes of *io* by *table* ({id: (name, integer converter or None,
 * converter, integer rule or None)}: Naming.table), as Naming.attributes()
 * gives them: a new dict, or NULL with *outcome* set. */
static PyObject *
attributes_of(PyObject *io, PyObject *table, int *outcome)
{
    PyObject *attributes = PyDict_New();
    if (attributes == NULL) {
        *outcome = FAILED;
        return NULL;
    }
    Py_ssize_t position = 0;
    PyObject *key, *value;
    while (PyDict_Next(io, &position, &key, &value)) {
        PyObject *entry = PyDict_GetItemWithError(table, key);
        if (entry == NULL) {
            if (PyErr_Occurred()) {
                goto failed;
            }
            continue;
        }
        if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 4) {
            *outcome = CANNOT;
            Py_DECREF(attributes);
            return NULL;
        }
        PyObject *name = PyTuple_GET_ITEM(entry, 0);
        PyObject *of_integer = PyTuple_GET_ITEM(entry, 1);
        PyObject *named;
        if (PyLong_CheckExact(value)) {
            PyObject *rule = PyTuple_GET_ITEM(entry, 3);
            if (of_integer == Py_None) {
                named = Py_NewRef(value);
            }
            else if (rule == Py_None
                     || (named = apply_rule(value, rule)) == NULL) {
                if (PyErr_Occurred()) {
                    goto failed;
                }
                named = PyObject_CallOneArg(of_integer, value);
            }
        }
        else {
            named = PyObject_CallOneArg(PyTuple_GET_ITEM(entry, 2), value);
        }
        if (named == NULL) {
            goto failed;
        }
        int stored = PyDict_SetItem(attributes, name, named);
        Py_DECREF(named);
        if (stored < 0) {
            goto failed;
        }
    }
    *outcome = DONE;
    return attributes;
failed:
    /* A converter failed: the Python code names the record alike and raises. */
    PyErr_Clear();
    *outcome = CANNOT;
    Py_DECREF(attributes);
    return NULL;
}

/* BLAKE2b (RFC 7693), unkeyed, with an 8-byte digest: what
 * hashlib.blake2b(data, digest_size=8) gives, without a Python call. */

#define BLAKE2B_BLOCK 128
#define DIGEST_SIZE 8

static const uint64_t BLAKE2B_IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL,
    0xa54ff53a5f1d36f1ULL, 0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL,
    0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

/* The message words each round takes, in order; rounds 10 and 11 take
 * those of rounds 0 and 1. */
static const uint8_t BLAKE2B_SIGMA[10][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

static inline uint64_t
rotate_right(uint64_t word, int bits)
{
    return (word >> bits) | (word << (64 - bits));
}

static inline uint64_t
little_endian_word(const unsigned char *bytes)
{
    uint64_t word = 0;
    for (int index = 7; index >= 0; index--) {
        word = (word << 8) | bytes[index];
    }
    return word;
}

#define MIX(v, a, b, c, d, x, y)                                             \
    do {                                                                     \
        v[a] += v[b] + (x);                                                  \
        v[d] = rotate_right(v[d] ^ v[a], 32);                                \
        v[c] += v[d];                                                        \
        v[b] = rotate_right(v[b] ^ v[c], 24);                                \
        v[a] += v[b] + (y);                                                  \
        v[d] = rotate_right(v[d] ^ v[a], 16);                                \
        v[c] += v[d];                                                        \
        v[b] = rotate_right(v[b] ^ v[c], 63);                                \
    } while (0)

/* Fold one block into the state *h*; *counted* bytes hashed with it. */
static void
blake2b_compress(uint64_t h[8], const unsigned char *block, uint64_t counted,
                 int last)
{
    uint64_t v[16], m[16];
    for (int index = 0; index < 8; index++) {
        v[index] = h[index];
        v[index + 8] = BLAKE2B_IV[index];
    }
    v[12] ^= counted; /* the counter's high word stays 0: data is < 2**64 bytes */
    if (last) {
        v[14] = ~v[14];
    }
    for (int index = 0; index < 16; index++) {
        m[index] = little_endian_word(block + 8 * index);
    }
    for (int round = 0; round < 12; round++) {
        const uint8_t *s = BLAKE2B_SIGMA[round % 10];
        MIX(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
        MIX(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
        MIX(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
        MIX(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
        MIX(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
        MIX(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
        MIX(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
        MIX(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int index = 0; index < 8; index++) {
        h[index] ^= v[index] ^ v[index + 8];
    }
}

/* The 8-byte BLAKE2b of *data*, as 16 lowercase hex digits in *hex*. */
static void
blake2b_hex(const unsigned char *data, Py_ssize_t size, char hex[2 * DIGEST_SIZE])
{
    uint64_t h[8];
    memcpy(h, BLAKE2B_IV, sizeof h);
    h[0] ^= 0x01010000ULL ^ DIGEST_SIZE; /* fan-out 1, depth 1, no key */
    uint64_t counted = 0;
    while (size > BLAKE2B_BLOCK) {
        counted += BLAKE2B_BLOCK;
        blake2b_compress(h, data, counted, 0);
        data += BLAKE2B_BLOCK;
        size -= BLAKE2B_BLOCK;
    }
    unsigned char last[BLAKE2B_BLOCK] = {0};
    memcpy(last, data, (size_t)size);
    counted += (uint64_t)size;
    blake2b_compress(h, last, counted, 1);
    for (int index = 0; index < DIGEST_SIZE; index++) {
        unsigned char byte = (unsigned char)(h[0] >> (8 * index));
        hex[2 * index] = HEX[byte >> 4];
        hex[2 * index + 1] = HEX[byte & 15];
    }
}

/* IMEI:TIMESTAMP_MS:HASH, the hash being the 8-byte BLAKE2b of the wire bytes. */
static PyObject *
record_id(PyObject *imei, unsigned long long timestamp, PyObject *wire)
{
    char hex[2 * DIGEST_SIZE + 1];
    blake2b_hex((const unsigned char *)PyBytes_AS_STRING(wire),
                PyBytes_GET_SIZE(wire), hex);
    hex[2 * DIGEST_SIZE] = '\0';
    return PyUnicode_FromFormat("%U:%llu:%s", imei, timestamp, hex);
}

/* The JSON line of one record: everything after the head, which the caller
 * has put. */
static int
put_record(Line *line, PyObject *record, unsigned long long timestamp,
           PyObject *attributes)
{
    STEP(PUT_LITERAL(line, ",\"timestamp\":"));
    STEP(put_timestamp(line, timestamp));
    STEP(put_fields(line, record));
    STEP(PUT_LITERAL(line, ",\"io\":"));
    STEP(put_object(line, PyTuple_GET_ITEM(record, F_IO)));
    if (attributes != NULL) {
        STEP(PUT_LITERAL(line, ",\"attributes\":"));
        STEP(put_object(line, attributes));
    }
    return PUT_LITERAL(line, "}");
}

/* Set a slot of a frozen attrs instance, as its __init__ does. */
static int
set_field(PyObject *item, PyObject *name, PyObject *value)
{
    return PyObject_GenericSetAttr(item, name, value) < 0 ? FAILED : DONE;
}

/* Takes *item* and its *record* off the cyclic garbage collector's lists
 * where neither can be part of a reference cycle: their fields are strings,
 * bytes, numbers, the codec and the shared IO layout, and their dicts hold
 * only such values (the line was written from them). A dict that ever held
 * a container stays tracked, and could hold one again: a record with such
 * an IO dict stays tracked. CPython spares tuples of plain values alike.
 * Under a burst, thousands of items wait for their ACK at once, and every
 * collection walked them all. */
static void
untrack(PyObject *item, PyObject *record)
{
    if (PyObject_GC_IsTracked(PyTuple_GET_ITEM(record, F_IO))) {
        return;
    }
    if (PyObject_GC_IsTracked(record)) {
        PyObject_GC_UnTrack(record);
    }
    PyObject_GC_UnTrack(item);
}

/* One item of class *cls*, or NULL with *outcome* set. */
static PyObject *
tracker_record(PyTypeObject *cls, Line *line, PyObject *record, PyObject *imei,
               PyObject *codec, PyObject *label, PyObject *received_at_ms,
               PyObject *received_at, PyObject *table, int *outcome)
{
    *outcome = CANNOT;
    if (Py_TYPE(record)->tp_base != &PyTuple_Type
        || PyTuple_GET_SIZE(record) != RECORD_FIELDS) {
        return NULL;
    }
    PyObject *io = PyTuple_GET_ITEM(record, F_IO);
    PyObject *wire = PyTuple_GET_ITEM(record, F_WIRE);
    PyObject *timestamp_object = PyTuple_GET_ITEM(record, F_TIMESTAMP);
    if (!PyDict_CheckExact(io) || !PyBytes_CheckExact(wire)
        || PyBytes_GET_SIZE(wire) == 0 || !PyLong_CheckExact(timestamp_object)) {
        return NULL; /* built in code: Python encodes it for its id */
    }
    unsigned long long timestamp = PyLong_AsUnsignedLongLong(timestamp_object);
    if (PyErr_Occurred() || timestamp > MAX_TIMESTAMP_MS) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *attributes = NULL;
    if (table != Py_None) {
        attributes = attributes_of(io, table, outcome);
        if (attributes == NULL) {
            return NULL;
        }
    }
    PyObject *id = record_id(imei, timestamp, wire);
    PyObject *item = NULL, *bytes = NULL;
    if (id == NULL) {
        *outcome = FAILED;
        goto done;
    }
    line->length = 0;
    *outcome = PUT_LITERAL(line, "{\"id\":");
    if (*outcome == DONE) *outcome = put_string(line, id);
    if (*outcome == DONE) *outcome = PUT_LITERAL(line, ",\"imei\":");
    if (*outcome == DONE) *outcome = put_string(line, imei);
    if (*outcome == DONE) *outcome = PUT_LITERAL(line, ",\"received_at\":");
    if (*outcome == DONE) *outcome = put_string(line, received_at);
    if (*outcome == DONE) *outcome = PUT_LITERAL(line, ",\"codec\":");
    if (*outcome == DONE) *outcome = put_string(line, label);
    if (*outcome == DONE) *outcome = put_record(line, record, timestamp, attributes);
    if (*outcome != DONE) {
        goto done;
    }
    bytes = PyBytes_FromStringAndSize(line->data, line->length);
    if (bytes == NULL) {
        *outcome = FAILED;
        goto done;
    }
    item = cls->tp_alloc(cls, 0);
    if (item == NULL) {
        *outcome = FAILED;
        goto done;
    }
    if (set_field(item, name_imei, imei) != DONE
        || set_field(item, name_codec, codec) != DONE
        || set_field(item, name_record, record) != DONE
        || set_field(item, name_received_at_ms, received_at_ms) != DONE
        || set_field(item, name_id, id) != DONE
        || set_field(item, name_attributes, attributes ? attributes : Py_None) != DONE
        || set_field(item, name_line, bytes) != DONE) {
        *outcome = FAILED;
        Py_CLEAR(item);
    }
    else {
        untrack(item, record);
    }
done:
    Py_XDECREF(attributes);
    Py_XDECREF(id);
    Py_XDECREF(bytes);
    return item;
}

PyDoc_STRVAR(tracker_records_doc,
"tracker_records(cls, records, imei, codec, label, received_at_ms, received_at, table)\n"
"--\n\n"
"A tuple of one *cls* item for each of *records*, or None where the Python\n"
"code must build them.");

static PyObject *
tracker_records(PyObject *module, PyObject *const *arguments, Py_ssize_t count)
{
    (void)module;
    if (count != 8) {
        PyErr_SetString(PyExc_TypeError, "tracker_records() takes 8 arguments");
        return NULL;
    }
    PyObject *cls = arguments[0], *records = arguments[1], *imei = arguments[2],
             *codec = arguments[3], *label = arguments[4],
             *received_at_ms = arguments[5], *received_at = arguments[6],
             *table = arguments[7];
    if (!PyType_Check(cls) || !PyTuple_CheckExact(records)
        || !PyUnicode_CheckExact(imei) || !PyUnicode_CheckExact(label)
        || !PyUnicode_CheckExact(received_at)
        || !(table == Py_None || PyDict_CheckExact(table))) {
        PyErr_SetString(PyExc_TypeError, "tracker_records(): unexpected arguments");
        return NULL;
    }
    Py_ssize_t size = PyTuple_GET_SIZE(records);
    PyObject *items = PyTuple_New(size);
    if (items == NULL) {
        return NULL;
    }
    Line line = {NULL, 0, 0};
    int outcome = DONE;
    for (Py_ssize_t index = 0; index < size; index++) {
        PyObject *item = tracker_record(
            (PyTypeObject *)cls, &line, PyTuple_GET_ITEM(records, index), imei,
            codec, label, received_at_ms, received_at, table, &outcome);
        if (item == NULL) {
            break;
        }
        PyTuple_SET_ITEM(items, index, item);
    }
    PyMem_Free(line.data);
    if (outcome == DONE) {
        return items;
    }
    Py_DECREF(items);
    if (outcome == FAILED) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"tracker_records", (PyCFunction)(void (*)(void))tracker_records,
     METH_FASTCALL, tracker_records_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT,
    "teltotwist.gateway._fastitems",
    "The items of a packet's records, compiled (see items.tracker_records).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

static PyObject *
intern(const char *text)
{
    return PyUnicode_InternFromString(text);
}

PyMODINIT_FUNC
PyInit__fastitems(void)
{
    name_imei = intern("imei");
    name_codec = intern("codec");
    name_record = intern("record");
    name_received_at_ms = intern("received_at_ms");
    name_id = intern("id");
    name_attributes = intern("attributes");
    name_line = intern("line");
    if (name_imei == NULL || name_codec == NULL
        || name_record == NULL || name_received_at_ms == NULL || name_id == NULL
        || name_attributes == NULL || name_line == NULL) {
        return NULL;
    }
    return PyModule_Create(&module_definition);
}

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

#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h>
#define Py_T_OBJECT_EX T_OBJECT_EX /* its name from 3.12 */
#endif

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

/* An item's fields (TrackerRecord's), and their names. */
enum {
    I_IMEI, I_CODEC, I_RECORD, I_RECEIVED_AT_MS, I_ID, I_ATTRIBUTES, I_LINE,
    ITEM_FIELDS
};

static const char *const ITEM_FIELD_NAMES[ITEM_FIELDS] = {
    "imei", "codec", "record", "received_at_ms", "id", "attributes", "line",
};

static PyObject *item_field_names[ITEM_FIELDS]; /* interned */

/* A growing byte buffer: a JSON line, or a part of one. */
typedef struct {
    char *data;
    Py_ssize_t length;
    Py_ssize_t capacity;
} Line;

/* Grow *line* so that *more* bytes fit after its end. */
static int
grow(Line *line, Py_ssize_t more)
{
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

/* Room for *more* bytes after the end of *line*. */
static inline int
reserve(Line *line, Py_ssize_t more)
{
    return more <= line->capacity - line->length ? DONE : grow(line, more);
}

/* *size* bytes of *text* after the end of *line*. */
static inline int
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

/* How orjson escapes each byte of a string's UTF-8: 0 where it does not
 * (the byte as it is), else the letter after the backslash, 'u' for \u00XX. */
static const char ESCAPES[256] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    ['"'] = '"', ['\\'] = '\\',
};

/* A str as a JSON string, escaped as orjson escapes it. */
static int
put_string(Line *line, PyObject *text)
{
    Py_ssize_t size;
    const char *utf8;
    if (PyUnicode_IS_COMPACT_ASCII(text)) {
        /* Its characters are its UTF-8 bytes: most names and values. */
        utf8 = (const char *)PyUnicode_1BYTE_DATA(text);
        size = PyUnicode_GET_LENGTH(text);
    }
    else if ((utf8 = PyUnicode_AsUTF8AndSize(text, &size)) == NULL) {
        PyErr_Clear(); /* a lone surrogate: orjson refuses it, and so will Python */
        return CANNOT;
    }
    char *out = open_string(line, size, 6); /* \u00XX at the most */
    if (out == NULL) {
        return FAILED;
    }
    /* Most strings need no escape: copied at once, when that is known. */
    char escapes = 0;
    for (Py_ssize_t index = 0; index < size; index++) {
        escapes |= ESCAPES[(unsigned char)utf8[index]];
    }
    if (escapes == 0) {
        memcpy(out, utf8, size);
        out += size;
    }
    else {
        for (Py_ssize_t index = 0; index < size; index++) {
            unsigned char byte = (unsigned char)utf8[index];
            char escape = ESCAPES[byte];
            if (escape == 0) {
                *out++ = (char)byte;
                continue;
            }
            *out++ = '\\';
            *out++ = escape;
            if (escape == 'u') {
                *out++ = '0';
                *out++ = '0';
                *out++ = HEX[byte >> 4];
                *out++ = HEX[byte & 0xF];
            }
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

/* "00" to "99": two digits at a time. */
static const char DIGIT_PAIRS[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* 10**digits, for counting the digits of a number. */
static const unsigned long long POWERS_OF_TEN[20] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
    100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL,
    1000000000000ULL, 10000000000000ULL, 100000000000000ULL,
    1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
    1000000000000000000ULL, 10000000000000000000ULL,
};

/* The most bytes of a 64-bit integer in decimal: "-" and 20 digits. */
#define DECIMAL_SIZE 21

/* *magnitude* in decimal at *out*, after a minus sign if *negative*: where
 * it ends. */
static inline char *
write_decimal(char *out, unsigned long long magnitude, int negative)
{
    if (negative) {
        *out++ = '-';
    }
    /* Its digits from its bits: a number of n bits has e or e + 1 digits,
     * e being n * 1233 / 4096 (1233 / 4096 is just under log10(2)), and a
     * power of ten tells which. Setting the lowest bit changes no number of
     * digits, and makes 0 a number of one bit. */
    unsigned long long odd = magnitude | 1;
    int estimate = ((64 - __builtin_clzll(odd)) * 1233) >> 12;
    char *end = out + estimate + (odd >= POWERS_OF_TEN[estimate]);
    char *at = end;
    while (magnitude >= 100) {
        at -= 2;
        memcpy(at, DIGIT_PAIRS + 2 * (magnitude % 100), 2);
        magnitude /= 100;
    }
    if (magnitude >= 10) {
        memcpy(at - 2, DIGIT_PAIRS + 2 * magnitude, 2);
    }
    else {
        at[-1] = (char)('0' + magnitude);
    }
    return end;
}

/* *magnitude* in decimal, after a minus sign if *negative*. */
static inline int
put_decimal(Line *line, unsigned long long magnitude, int negative)
{
    STEP(reserve(line, DECIMAL_SIZE));
    line->length = write_decimal(line->data + line->length, magnitude, negative)
                   - line->data;
    return DONE;
}

/* The value of *number*, an int, where it is compact (of a single digit of
 * CPython's, under 2**30 in magnitude with 30-bit digits); 0 otherwise. */
static inline int
compact_value(PyObject *number, long long *value)
{
#if PY_VERSION_HEX >= 0x030C0000
    if (!PyUnstable_Long_IsCompact((PyLongObject *)number)) {
        return 0;
    }
    *value = PyUnstable_Long_CompactValue((PyLongObject *)number);
#else
    Py_ssize_t size = Py_SIZE(number); /* its sign, times its digits */
    if (size < -1 || size > 1) {
        return 0;
    }
    *value = size * (long long)((PyLongObject *)number)->ob_digit[0];
#endif
    return 1;
}

/* *number*, an int, as its *magnitude* and whether it is *negative*: DONE
 * within orjson's range (64-bit signed or unsigned), CANNOT beyond it. */
static inline int
int_parts(PyObject *number, unsigned long long *magnitude, int *negative)
{
    long long value;
    if (!compact_value(number, &value)) {
        int overflow;
        value = PyLong_AsLongLongAndOverflow(number, &overflow);
        if (overflow > 0) {
            unsigned long long large = PyLong_AsUnsignedLongLong(number);
            if (large == (unsigned long long)-1 && PyErr_Occurred()) {
                PyErr_Clear();
                return CANNOT;
            }
            *negative = 0;
            *magnitude = large;
            return DONE;
        }
        if (overflow < 0) {
            return CANNOT;
        }
        if (value == -1 && PyErr_Occurred()) {
            return FAILED;
        }
    }
    *negative = value < 0;
    *magnitude = value < 0 ? 0ULL - (unsigned long long)value
                           : (unsigned long long)value;
    return DONE;
}

/* An int within orjson's range (64-bit signed or unsigned). */
static inline int
put_int(Line *line, PyObject *number)
{
    unsigned long long magnitude;
    int negative;
    STEP(int_parts(number, &magnitude, &negative));
    return put_decimal(line, magnitude, negative);
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

/* A value other than an int: see put_value(). */
static int
put_other_value(Line *line, PyObject *value)
{
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

/* A value of a record's fields, IO or attributes, as orjson writes it with
 * the record JSON's default (bytes as hex). Most are ints, written here. */
static inline int
put_value(Line *line, PyObject *value)
{
    return PyLong_CheckExact(value) ? put_int(line, value)
                                    : put_other_value(line, value);
}

/* Two digits of *value* (0 to 99) at *out*. */
static void
two_digits(char *out, int value)
{
    out[0] = (char)('0' + value / 10);
    out[1] = (char)('0' + value % 10);
}

/* The date *days* after 1970-01-01, in the proleptic Gregorian calendar
 * as gmtime() gives it, without a call: H. Hinnant's civil_from_days. */
static void
civil_date(unsigned long long days, int *year, int *month, int *day)
{
    days += 719468; /* counted from 0000-03-01: a year then ends on its leap day */
    unsigned long long era = days / 146097; /* of 400 years */
    unsigned day_of_era = (unsigned)(days % 146097);
    unsigned year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524
                            - day_of_era / 146096) / 365;
    unsigned day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4
                                         - year_of_era / 100);
    unsigned month_from_march = (5 * day_of_year + 2) / 153;
    *day = (int)(day_of_year - (153 * month_from_march + 2) / 5 + 1);
    *month = (int)(month_from_march < 10 ? month_from_march + 3 : month_from_march - 9);
    *year = (int)(era * 400 + year_of_era) + (*month <= 2);
}

/* "2019-06-10T10:04:46.000Z", in quotes, for milliseconds since the epoch
 * (at most MAX_TIMESTAMP_MS: a four-digit year). */
static int
put_timestamp(Line *line, unsigned long long milliseconds)
{
    unsigned long long seconds = milliseconds / 1000;
    unsigned of_day = (unsigned)(seconds % 86400);
    int year, month, day;
    civil_date(seconds / 86400, &year, &month, &day);
    char text[] = "\"YYYY-MM-DDTHH:MM:SS.mmmZ\"";
    unsigned fraction = (unsigned)(milliseconds % 1000);
    two_digits(text + 1, year / 100);
    two_digits(text + 3, year % 100);
    two_digits(text + 6, month);
    two_digits(text + 9, day);
    two_digits(text + 12, (int)(of_day / 3600));
    two_digits(text + 15, (int)(of_day / 60 % 60));
    two_digits(text + 18, (int)(of_day % 60));
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

/* A key of a dict as orjson writes it, then the colon: a str, or an int as
 * its OPT_NON_STR_KEYS writes it (the IO's ids), in quotes. */
static int
put_key(Line *line, PyObject *key)
{
    if (PyUnicode_CheckExact(key)) {
        STEP(put_string(line, key));
        return PUT_LITERAL(line, ":");
    }
    if (!PyLong_CheckExact(key)) {
        return CANNOT;
    }
    unsigned long long magnitude;
    int negative;
    STEP(int_parts(key, &magnitude, &negative));
    STEP(reserve(line, 1 + DECIMAL_SIZE + 2));
    char *out = line->data + line->length;
    *out++ = '"';
    out = write_decimal(out, magnitude, negative);
    memcpy(out, "\":", 2);
    line->length = out + 2 - line->data;
    return DONE;
}

/* {"key":value,...} for a dict keyed by str or int. */
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
        STEP(put_key(line, key));
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
    unsigned long long raw;
    int negative;
    int read = int_parts(value, &raw, &negative);
    if (PyErr_Occurred() || read != DONE || negative || bits < 0 || bits > 64
        || denominator <= 0) {
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

/* How the table names one IO id, as a call remembers it (see Namings). */
typedef struct {
    unsigned generation; /* the namings' when it was looked up; 0: none */
    long long id;        /* the id (-1 for one not remembered) */
    PyObject *entry;     /* its entry in the table (a reference), or NULL: none */
    Py_ssize_t at, size; /* where its name is in the namings' keys, as "name":
                          * (size -1 where orjson could not write it so) */
} KnownId;

#define REMEMBERED 128 /* ids remembered at once: each in place id % 128 */

/* What one call remembers of the table it names records by ({id: (name,
 * integer converter or None, converter, integer rule or None)}:
 * Naming.table): the entry of each IO id it met (those that are CPython's
 * compact ints, as the IO's ids are), its name written once as a JSON key,
 * so that an id is looked up once a call rather than once a record. It holds
 * the entries it remembers, which live as long as it does. A converter is
 * Python code, which could change the table: after one runs, every id is
 * looked up again (a new generation). */
typedef struct {
    PyObject *table;
    unsigned generation;
    KnownId known[REMEMBERED + 1];     /* the last for other ids */
    Line keys;                         /* the names, as JSON keys */
} Namings;

/* How the table names IO id *key*: remembered, or looked up and remembered,
 * in *known*. */
static int
recall(Namings *namings, PyObject *key, KnownId **known)
{
    long long id;
    KnownId *place = &namings->known[REMEMBERED];
    if (PyLong_CheckExact(key) && compact_value(key, &id) && id >= 0) {
        place = &namings->known[id % REMEMBERED];
        if (place->id == id && place->generation == namings->generation) {
            *known = place;
            return DONE;
        }
    }
    else {
        id = -1;
    }
    /* Forgotten first, in case the lookup fails. */
    Py_CLEAR(place->entry);
    place->generation = 0;
    PyObject *entry = PyDict_GetItemWithError(namings->table, key);
    if (entry == NULL) {
        if (PyErr_Occurred()) {
            PyErr_Clear(); /* Python fails alike */
            return CANNOT;
        }
    }
    else {
        if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 4) {
            return CANNOT;
        }
        Line *keys = &namings->keys;
        place->at = keys->length;
        int outcome = put_key(keys, PyTuple_GET_ITEM(entry, 0));
        if (outcome == FAILED) {
            return FAILED;
        }
        place->size = outcome == DONE ? keys->length - place->at : -1;
    }
    place->entry = Py_XNewRef(entry);
    place->id = id;
    place->generation = namings->generation;
    *known = place;
    return DONE;
}

/* *converter*(*value*): Python code, after which *namings* forget all. */
static PyObject *
convert(Namings *namings, PyObject *converter, PyObject *value)
{
    PyObject *named = PyObject_CallOneArg(converter, value);
    namings->generation++;
    namings->keys.length = 0;
    return named;
}

/* Forget all, for good: what *namings* hold is released. */
static void
release_namings(Namings *namings)
{
    for (int place = 0; place <= REMEMBERED; place++) {
        Py_CLEAR(namings->known[place].entry);
    }
    PyMem_Free(namings->keys.data);
}

/* The attribute of one IO element, *value* of id *key*, by the table of
 * *namings*, as Naming.attributes() names it: put in *attributes*, and as
 * "name":value in *object* after the *written* pairs before it. Where a
 * pair cannot be written there, *written* becomes -1 and *object* is left
 * as it is (the caller then writes it from *attributes*). */
static int
add_attribute(PyObject *attributes, Line *object, Py_ssize_t *written,
              Namings *namings, PyObject *key, PyObject *value)
{
    KnownId *known;
    STEP(recall(namings, key, &known));
    PyObject *entry = known->entry;
    if (entry == NULL) {
        return DONE;
    }
    /* ,"name": first, while the namings' keys hold it: a converter may run
     * before the value is known, after which they are forgotten. */
    Py_ssize_t length = object->length;
    if (*written >= 0 && known->size < 0) {
        *written = -1;
    }
    else if (*written >= 0) {
        STEP(reserve(object, 1 + known->size));
        if (*written > 0) {
            object->data[object->length++] = ',';
        }
        memcpy(object->data + object->length, namings->keys.data + known->at,
               known->size);
        object->length += known->size;
    }
    PyObject *name = PyTuple_GET_ITEM(entry, 0);
    PyObject *of_integer = PyTuple_GET_ITEM(entry, 1);
    PyObject *named;
    if (PyLong_CheckExact(value)) {
        PyObject *rule = PyTuple_GET_ITEM(entry, 3);
        if (of_integer == Py_None) {
            named = Py_NewRef(value);
        }
        else if (rule == Py_None || (named = apply_rule(value, rule)) == NULL) {
            if (PyErr_Occurred()) {
                goto failed;
            }
            named = convert(namings, of_integer, value);
        }
    }
    else {
        named = convert(namings, PyTuple_GET_ITEM(entry, 2), value);
    }
    if (named == NULL) {
        goto failed;
    }
    if (PyDict_SetItem(attributes, name, named) < 0) {
        Py_DECREF(named);
        goto failed;
    }
    int outcome = DONE;
    if (*written >= 0) {
        outcome = put_value(object, named);
        if (outcome == CANNOT) {
            object->length = length;
            *written = -1;
            outcome = DONE;
        }
        else if (outcome == DONE) {
            ++*written;
        }
    }
    Py_DECREF(named);
    return outcome;
failed:
    /* A converter failed: the Python code names the record alike and raises. */
    PyErr_Clear();
    return CANNOT;
}

/* {"id":value,...} for *io*; with *namings* (not NULL), its attributes too,
 * named as Naming.attributes() names them: a new dict in *attributes*, and
 * its JSON object in *object*. Both are written in one walk of the io. */
static int
put_io(Line *line, PyObject *io, Namings *namings, PyObject **attributes,
       Line *object)
{
    if (namings != NULL) {
        /* Sized for the io at once, as mypyc's runtime (which makes the
         * compiled decoder) sizes the dicts it builds: not grown twice for
         * a record's 10 to 20 attributes. */
        *attributes = _PyDict_NewPresized(PyDict_GET_SIZE(io));
        if (*attributes == NULL) {
            return FAILED;
        }
        object->length = 0;
        STEP(PUT_LITERAL(object, "{"));
    }
    STEP(PUT_LITERAL(line, "{"));
    Py_ssize_t position = 0, written = 0;
    PyObject *key, *value;
    int first = 1;
    while (PyDict_Next(io, &position, &key, &value)) {
        if (!first) {
            STEP(PUT_LITERAL(line, ","));
        }
        first = 0;
        STEP(put_key(line, key));
        STEP(put_value(line, value));
        if (namings != NULL) {
            STEP(add_attribute(*attributes, object, &written, namings, key, value));
        }
    }
    if (namings != NULL) {
        if (written == PyDict_GET_SIZE(*attributes)) {
            STEP(PUT_LITERAL(object, "}"));
        }
        else {
            /* Two ids of one name (the dict holds the last value, where the
             * first was), or a pair that could not be written: the dict
             * decides. */
            object->length = 0;
            STEP(put_object(object, *attributes));
        }
    }
    return PUT_LITERAL(line, "}");
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

/* Written out, so that compilers see one load on a little-endian machine. */
static inline uint64_t
little_endian_word(const unsigned char *bytes)
{
    return (uint64_t)bytes[0] | (uint64_t)bytes[1] << 8 | (uint64_t)bytes[2] << 16
           | (uint64_t)bytes[3] << 24 | (uint64_t)bytes[4] << 32
           | (uint64_t)bytes[5] << 40 | (uint64_t)bytes[6] << 48
           | (uint64_t)bytes[7] << 56;
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

/* One round, *r* of BLAKE2B_SIGMA. */
#define ROUND(r)                                                             \
    do {                                                                     \
        const uint8_t *s = BLAKE2B_SIGMA[r];                                 \
        MIX(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);                               \
        MIX(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);                               \
        MIX(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);                              \
        MIX(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);                              \
        MIX(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);                              \
        MIX(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);                            \
        MIX(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);                             \
        MIX(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);                             \
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
    /* The rounds written out: the words each takes are then constants. */
    ROUND(0); ROUND(1); ROUND(2); ROUND(3); ROUND(4); ROUND(5);
    ROUND(6); ROUND(7); ROUND(8); ROUND(9); ROUND(0); ROUND(1);
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

/* The most bytes of an id after its IMEI: ":TIMESTAMP_MS:HASH". */
#define ID_TAIL (1 + DECIMAL_SIZE + 1 + 2 * DIGEST_SIZE)

/* What follows the IMEI in a record's id, ":TIMESTAMP_MS:HASH", the hash
 * being the 8-byte BLAKE2b of the *wire* bytes, at *out*: where it ends. */
static char *
write_id_tail(char *out, unsigned long long timestamp, PyObject *wire)
{
    *out++ = ':';
    out = write_decimal(out, timestamp, 0);
    *out++ = ':';
    blake2b_hex((const unsigned char *)PyBytes_AS_STRING(wire),
                PyBytes_GET_SIZE(wire), out);
    return out + 2 * DIGEST_SIZE;
}

/* IMEI:TIMESTAMP_MS:HASH, from *imei* and the *tail* after it (*size*
 * bytes, then a NUL). */
static PyObject *
record_id(PyObject *imei, const char *tail, Py_ssize_t size)
{
    if (!PyUnicode_IS_COMPACT_ASCII(imei)) {
        return PyUnicode_FromFormat("%U%s", imei, tail);
    }
    /* An ASCII IMEI, as a tracker's is: the id copied together. */
    Py_ssize_t head = PyUnicode_GET_LENGTH(imei);
    PyObject *id = PyUnicode_New(head + size, 127);
    if (id != NULL) {
        memcpy(PyUnicode_1BYTE_DATA(id), PyUnicode_1BYTE_DATA(imei), head);
        memcpy(PyUnicode_1BYTE_DATA(id) + head, tail, size);
    }
    return id;
}

/* The buffers of one call. */
typedef struct {
    Line line;          /* a record's JSON line */
    Line attributes;    /* its attributes' JSON object, put after its io */
    Line shared;        /* what every line of the call has: see put_shared() */
    Py_ssize_t id_head; /* the size of the line's head up to the id's tail */
} Lines;

/* What every line of a call has, in *lines*' shared text: {"id":"IMEI up
 * to *id_head*, where the id's tail goes, then the quote closing the id and
 * ,"imei":...,"received_at":...,"codec":...,"timestamp": */
static int
put_shared(Lines *lines, PyObject *imei, PyObject *received_at, PyObject *label)
{
    Line *shared = &lines->shared;
    STEP(PUT_LITERAL(shared, "{\"id\":"));
    STEP(put_string(shared, imei));
    lines->id_head = shared->length - 1;
    STEP(PUT_LITERAL(shared, ",\"imei\":"));
    STEP(put_string(shared, imei));
    STEP(PUT_LITERAL(shared, ",\"received_at\":"));
    STEP(put_string(shared, received_at));
    STEP(PUT_LITERAL(shared, ",\"codec\":"));
    STEP(put_string(shared, label));
    return PUT_LITERAL(shared, ",\"timestamp\":");
}

/* The JSON line of *record*, whose id ends with *tail* (*size* bytes), in
 * *lines*; with *namings* (not NULL), its attributes in *attributes*. */
static int
put_record(Lines *lines, PyObject *record, unsigned long long timestamp,
           const char *tail, Py_ssize_t size, Namings *namings,
           PyObject **attributes)
{
    Line *line = &lines->line;
    Line *shared = &lines->shared;
    line->length = 0;
    STEP(put(line, shared->data, lines->id_head));
    STEP(put(line, tail, size));
    STEP(put(line, shared->data + lines->id_head, shared->length - lines->id_head));
    STEP(put_timestamp(line, timestamp));
    STEP(put_fields(line, record));
    STEP(PUT_LITERAL(line, ",\"io\":"));
    STEP(put_io(line, PyTuple_GET_ITEM(record, F_IO), namings, attributes,
                &lines->attributes));
    if (*attributes != NULL) {
        STEP(PUT_LITERAL(line, ",\"attributes\":"));
        STEP(put(line, lines->attributes.data, lines->attributes.length));
    }
    return PUT_LITERAL(line, "}");
}

/* Where the fields of an item of a class are, found once a call: the
 * offsets of their slots in the item, or none. */
typedef struct {
    int found;
    Py_ssize_t offsets[ITEM_FIELDS];
} Slots;

/* The slots of *cls* for the fields, as object.__setattr__ finds them: the
 * descriptor of each field in the class, when every one is a plain member
 * descriptor of an object slot, one of *cls* or of a base. (An item's slots
 * stay where its class's layout put them, whatever happens to the class.) */
static Slots
find_slots(PyTypeObject *cls)
{
    Slots slots = {0, {0}};
    for (int field = 0; field < ITEM_FIELDS; field++) {
        PyObject *descriptor = _PyType_Lookup(cls, item_field_names[field]);
        if (descriptor == NULL || !Py_IS_TYPE(descriptor, &PyMemberDescr_Type)) {
            return slots;
        }
        PyMemberDef *member = ((PyMemberDescrObject *)descriptor)->d_member;
        if (member->type != Py_T_OBJECT_EX || member->flags != 0
            || !PyType_IsSubtype(cls, PyDescr_TYPE(descriptor))) {
            return slots;
        }
        slots.offsets[field] = member->offset;
    }
    slots.found = 1;
    return slots;
}

/* Set the fields of a new item, a frozen attrs instance, to *values* as its
 * __init__ does, by object.__setattr__: straight into its slots, empty
 * still, where *slots* found them (what object.__setattr__ does through a
 * slot's descriptor), else by PyObject_GenericSetAttr(). */
static int
set_fields(PyObject *item, const Slots *slots, PyObject *const values[ITEM_FIELDS])
{
    for (int field = 0; field < ITEM_FIELDS; field++) {
        if (slots->found) {
            *(PyObject **)((char *)item + slots->offsets[field]) = Py_NewRef(values[field]);
        }
        else if (PyObject_GenericSetAttr(item, item_field_names[field], values[field]) < 0) {
            return FAILED;
        }
    }
    return DONE;
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
tracker_record(PyTypeObject *cls, const Slots *slots, Lines *lines,
               PyObject *record, PyObject *imei, PyObject *codec,
               PyObject *received_at_ms, Namings *namings, int *outcome)
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
    unsigned long long timestamp;
    int negative;
    if (int_parts(timestamp_object, &timestamp, &negative) != DONE || negative
        || timestamp > MAX_TIMESTAMP_MS) {
        PyErr_Clear();
        return NULL;
    }
    char tail[ID_TAIL + 1];
    char *end = write_id_tail(tail, timestamp, wire);
    *end = '\0';
    PyObject *attributes = NULL, *id = NULL, *bytes = NULL, *item = NULL;
    *outcome = put_record(lines, record, timestamp, tail, end - tail, namings,
                          &attributes);
    if (*outcome != DONE) {
        goto done;
    }
    *outcome = FAILED;
    id = record_id(imei, tail, end - tail);
    if (id == NULL) {
        goto done;
    }
    bytes = PyBytes_FromStringAndSize(lines->line.data, lines->line.length);
    if (bytes == NULL) {
        goto done;
    }
    item = cls->tp_alloc(cls, 0);
    if (item == NULL) {
        goto done;
    }
    PyObject *const values[ITEM_FIELDS] = {
        [I_IMEI] = imei, [I_CODEC] = codec, [I_RECORD] = record,
        [I_RECEIVED_AT_MS] = received_at_ms, [I_ID] = id,
        [I_ATTRIBUTES] = attributes ? attributes : Py_None, [I_LINE] = bytes,
    };
    if (set_fields(item, slots, values) != DONE) {
        Py_CLEAR(item);
        goto done;
    }
    untrack(item, record);
    *outcome = DONE;
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
    Slots slots = find_slots((PyTypeObject *)cls);
    Lines lines = {{NULL, 0, 0}, {NULL, 0, 0}, {NULL, 0, 0}, 0};
    Namings namings = {table, 1, {{0, 0, NULL, 0, 0}}, {NULL, 0, 0}};
    int outcome = size > 0 ? put_shared(&lines, imei, received_at, label) : DONE;
    for (Py_ssize_t index = 0; outcome == DONE && index < size; index++) {
        PyObject *item = tracker_record(
            (PyTypeObject *)cls, &slots, &lines, PyTuple_GET_ITEM(records, index),
            imei, codec, received_at_ms, table == Py_None ? NULL : &namings,
            &outcome);
        if (item != NULL) {
            PyTuple_SET_ITEM(items, index, item);
        }
    }
    release_namings(&namings);
    PyMem_Free(lines.line.data);
    PyMem_Free(lines.attributes.data);
    PyMem_Free(lines.shared.data);
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

PyMODINIT_FUNC
PyInit__fastitems(void)
{
    for (int field = 0; field < ITEM_FIELDS; field++) {
        item_field_names[field] = PyUnicode_InternFromString(ITEM_FIELD_NAMES[field]);
        if (item_field_names[field] == NULL) {
            return NULL;
        }
    }
    return PyModule_Create(&module_definition);
}

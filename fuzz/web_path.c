/* Fuzz target: the dashboard's request checks on arbitrary bytes: cv_web_path_ok and
 * cv_web_content_type on a path, cv_history_cursor_parse on a cursor. No input may crash; an
 * accepted path never holds a dot segment, a percent sign or a backslash; an accepted cursor
 * formats back to the same text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/api_history.h"
#include "server/web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char text[512];
    if (size >= sizeof text) size = sizeof text - 1;
    memcpy(text, data, size);
    text[size] = '\0';
    if (cv_web_path_ok(text)) {
        if (strstr(text, "/.") || strchr(text, '%') || strchr(text, '\\') || strstr(text, "//"))
            abort();
        (void)cv_web_content_type(text);
    }
    double t;
    int64_t id;
    if (cv_history_cursor_parse(text, &t, &id) == 0) {
        char again[48];
        cv_history_cursor_format(t, id, again, sizeof again);
        /* Leading zeros of the id are the only freedom the parser allows. */
        if (strncmp(again, text, 17) != 0) abort();
    }
    return 0;
}

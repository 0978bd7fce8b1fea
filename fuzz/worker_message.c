/* Fuzz target: the worker protocol's receive path. The input is a byte stream fed to
 * cv_frame_decode in input-chosen splits (the first byte seeds them); every complete JSON frame
 * goes through cv_msg_parse, as the coordinator and the worker do with what they read. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/frame.h"
#include "common/message.h"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    uint32_t seed = data[0] * 0x01010101u;
    data++;
    size--;
    cv_frame_decoder_t dec;
    cv_frame_decoder_init(&dec);
    char err[CV_ERRLEN];
    size_t off = 0;
    while (off < size) {
        size_t chunk = fuzz_next_chunk(&seed, size - off);
        size_t end = off + chunk;
        while (off < end) {
            size_t used = 0;
            cv_frame_t frame;
            int rc = cv_frame_decode(&dec, data + off, end - off, &used, &frame, err);
            if (used > end - off) abort();
            off += used;
            if (rc < 0) goto done; /* errors are sticky; the stream is over */
            if (rc == CV_FRAME_NEED_MORE) {
                if (off != end) abort(); /* NEED_MORE consumes everything given */
                break;
            }
            if (frame.payload[frame.len] != '\0') abort();
            if (frame.kind != CV_FRAME_JSON) continue;
            cv_msg_t msg;
            if (cv_msg_parse((const char *)frame.payload, frame.len, &msg, err) == 0) {
                cJSON_Delete(cv_msg_take_object(&msg));
                cv_msg_finish(&msg);
            }
        }
    }
done:
    cv_frame_decoder_finish(&dec);
    return 0;
}

/* cmd_health.c: `billingctl health check URL`: one HTTP GET, exit 0 when the
 * answer is 2xx, 1 otherwise (unreachable, timeout, any other status).
 *
 * It exists for container health checks: the runtime image carries only the
 * binaries and sql/, no curl, and every long-running process serves /readyz
 * (the ingester on INGESTER_LISTEN, the others on WORKER_HTTP_LISTEN). Needs
 * neither DATABASE_URL nor KAFKA_BROKERS.
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"

/* The body is not needed: discard it (a health endpoint's body is small). */
static size_t cmd_health_discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

/* An http:// URL of printable characters with nothing that needs escaping
 * in the JSON output. */
static bool cmd_health_url_ok(const char *url)
{
    if (strncmp(url, "http://", 7) != 0 || strlen(url) > 2048)
        return false;
    for (const char *p = url; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '"' || *p == '\\')
            return false;
    return true;
}

int cmd_health_check(int argc, char **argv, const cli_opts *o, const char *usage)
{
    if (argc != 2 || !cmd_health_url_ok(argv[1])) {
        fprintf(stderr, "usage: billingctl %s\n", usage);
        return CLI_USAGE;
    }
    const char *url = argv[1];
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "billingctl: cannot initialise libcurl\n");
        return CLI_REFUSED;
    }
    CURL *h = curl_easy_init();
    if (h == NULL) {
        curl_global_cleanup();
        fprintf(stderr, "billingctl: cannot initialise libcurl\n");
        return CLI_REFUSED;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    /* Plain HTTP on a local port only: no redirects, no other protocols. */
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cmd_health_discard);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    curl_global_cleanup();

    bool ok = rc == CURLE_OK && code >= 200 && code < 300;
    const char *why = rc != CURLE_OK ? (errbuf[0] ? errbuf : curl_easy_strerror(rc)) : "";
    if (o->json)
        printf("{\"url\":\"%s\",\"status\":%ld,\"healthy\":%s}\n", url, code,
               ok ? "true" : "false");
    else if (rc != CURLE_OK)
        printf("%s: unreachable: %s\n", url, why);
    else
        printf("%s: %ld %s\n", url, code, ok ? "healthy" : "unhealthy");
    return ok ? CLI_OK : CLI_REFUSED;
}

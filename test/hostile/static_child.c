/* Linked statically (case 18): never loads a preloaded library. Allocates, prints, exits 3. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    char* p = malloc(100000);
    printf("static child ran: %s\n", p != NULL ? "yes" : "no");
    free(p);
    return 3;
}

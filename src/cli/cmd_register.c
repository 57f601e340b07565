int ffdp_cmd_register(int argc, char **argv);
#include "cli/cli.h"
int ffdp_cmd_register(int argc, char **argv) { (void)argc; (void)argv; return cli_errorf("not yet"); }

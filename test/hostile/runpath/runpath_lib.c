/* Found only through dlopen_caller's DT_RUNPATH, or by "$ORIGIN/runpath/" in the name. */
int runpath_only_answer(void) { return 42; }

/* The one "kernel" source file of the fake tree. */
int start_kernel(void)
{
#ifdef BREAK_BUILD
	return undeclared_symbol + 1;
#endif
	return 0;
}

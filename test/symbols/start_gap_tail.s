# A compilation unit whose line table ends a sequence with a row of no length right before crt1's
# _start, as GCC's location views leave after the last instruction of main (a `.loc ... view`
# with no instruction after it). libdw sorts that row after the sequence's end, so its line look-up
# lends the row to every address up to the unit's next sequence: _start, in no unit's ranges and
# no sequence, would get line 18 here. The test/unit symbolize tests and the symbol e2e tests
# (linked into test/symbols/inlines) check that it gets no line, as llvm-symbolizer gives.
#
# The linker places .text.hot.* input sections after .text.startup (main) and before every .text,
# crt1's (_start) first. The .loc lines are this file's own lines.
	.file 1 "start_gap_tail.s"
	.section .text.hot.start_gap_tail,"ax",%progbits
	.globl start_gap_tail
	.type start_gap_tail, %function
start_gap_tail:
	.loc 1 16 0 view -0
	ret
	# the row of no length: a location view after the last instruction
	.loc 1 18 0 view .LVU1
	.size start_gap_tail, .-start_gap_tail

	# A second sequence, in .text after _start: the unit's last row is then not the one above
	# (libdw marks a unit's highest row as an end of sequence).
	.text
	.globl start_gap_later
	.type start_gap_later, %function
start_gap_later:
	.loc 1 28 0
	ret
	.size start_gap_later, .-start_gap_later

	.section .note.GNU-stack,"",%progbits
